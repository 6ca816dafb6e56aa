"""The official OpenAI and Ollama Python clients against a real `mm serve`, with nothing loaded beforehand.

Usage: clients.py BASE_URL CHAT_MODEL EMBED_MODEL
BASE_URL is mm serve's address (http://127.0.0.1:PORT); CHAT_MODEL a text-generation model's name, EMBED_MODEL an
embedding model's. Each step prints what it checked; any failure raises (a non-zero exit).
"""
import sys

import ollama
import openai

base, chat_model, embed_model = sys.argv[1], sys.argv[2], sys.argv[3]


def step(what):
    print(f"ok: {what}", flush=True)


# --- OpenAI's client, as a user points it at a local server (its API key is the server's token, none here) ---
client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)

names = [m.id for m in client.models.list()]
assert chat_model in names and embed_model in names, names
assert "text-generation" in names, f"a type's name is an alias of its active model: {names}"
step(f"models.list: {len(names)} names")
assert client.models.retrieve(chat_model).id == chat_model
step("models.retrieve")

answer = client.chat.completions.create(
    model=chat_model, messages=[{"role": "user", "content": "hello"}], max_tokens=8
)
assert answer.choices[0].message.role == "assistant", answer
assert answer.usage.completion_tokens > 0, answer
step("chat.completions.create (the model loaded on demand)")

chunks = list(
    client.chat.completions.create(
        model=chat_model,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=8,
        stream=True,
    )
)
assert len(chunks) >= 2, chunks
assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason in ("length", "stop"), chunks[-1]
step(f"chat.completions.create(stream=True): {len(chunks)} chunks")

text = client.completions.create(model=chat_model, prompt="the model is", max_tokens=4)
assert text.choices[0].text is not None
step("completions.create")

vectors = client.embeddings.create(model=embed_model, input=["hello world", "a model"])
assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0, vectors
step(f"embeddings.create: {len(vectors.data[0].embedding)} dimensions")

alias = client.chat.completions.create(
    model="text-generation", messages=[{"role": "user", "content": "hi"}], max_tokens=2
)
assert alias.choices, alias
step("a type's name answers as its active model")

try:
    client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown model was answered")
except openai.NotFoundError as e:
    assert "nobody/nothing" in str(e), e
    step("an unknown model: NotFoundError (404)")

for bad in ["../../etc/passwd", "/etc/passwd", ""]:
    try:
        client.chat.completions.create(model=bad, messages=[{"role": "user", "content": "hi"}])
        raise AssertionError(f"{bad!r} was answered")
    except openai.BadRequestError as e:
        assert e.status_code == 400, e
step("a path-like or empty model: BadRequestError (400)")

# --- Ollama's client, as tools that speak only Ollama's API use it ---
o = ollama.Client(host=base)
tags = [m.model for m in o.list().models]
assert chat_model in tags and embed_model in tags, tags
step(f"ollama list: {len(tags)} models")

reply = o.chat(model=chat_model, messages=[{"role": "user", "content": "hello"}], options={"num_predict": 6})
assert reply.message.role == "assistant" and reply.done and reply.eval_count > 0, reply
step("ollama chat")

parts = list(
    o.chat(model=chat_model, messages=[{"role": "user", "content": "hello"}], stream=True, options={"num_predict": 6})
)
assert parts[-1].done and not any(p.done for p in parts[:-1]), parts
assert parts[-1].done_reason in ("length", "stop"), parts[-1]
step(f"ollama chat stream: {len(parts)} records, the last done")

generated = o.generate(model=chat_model, prompt="the model is", options={"num_predict": 4})
assert generated.done and generated.response is not None, generated
step("ollama generate")

streamed = list(o.generate(model=chat_model, prompt="hello", stream=True, options={"num_predict": 4}))
assert streamed[-1].done, streamed
step("ollama generate stream")

embedded = o.embed(model=embed_model, input=["hello", "world"])
assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) > 0, embedded
step("ollama embed")

shown = o.show(chat_model)
assert "completion" in (shown.capabilities or []), shown
step("ollama show")

running = [m.model for m in o.ps().models]
assert chat_model in running and embed_model in running, running
step(f"ollama ps: {running}")

try:
    o.chat(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown model was answered")
except ollama.ResponseError as e:
    assert e.status_code == 404, e
    step("ollama: an unknown model is a ResponseError 404")

print("all clients passed", flush=True)
