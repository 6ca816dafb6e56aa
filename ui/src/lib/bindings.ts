// Generated from the Rust types in crates/core (src/bindings.rs). Do not edit by hand:
// `UPDATE_BINDINGS=1 cargo test -p mm-core --test bindings` rewrites it.

/**
 * What kind of failure this is, stable across releases: the UI and scripts branch on it.
 */
export type ErrorCode = "network" | "auth" | "not-found" | "insufficient-space" | "permission" | "checksum-mismatch" | "invalid-input" | "cancelled" | "io" | "conflict" | "internal";

/**
 * The one error shape that crosses to the UI and to `--json` output: a code to branch on, a message to show.
 */
export type ErrorPayload = { code: ErrorCode, message: string, };

/**
 * What a cached repo holds; the prefix of its folder name (`models--`, `datasets--`, `spaces--`).
 */
export type RepoKind = "model" | "dataset" | "space";

export type CacheStatus = "complete" | "partial";

/**
 * Everything found in one hub cache folder.
 */
export type CacheScan = { 
/**
 * The folder that was scanned.
 */
cacheDir: string, 
/**
 * False when the folder does not exist yet (nothing was ever downloaded): not an error.
 */
exists: boolean, 
/**
 * Repos, sorted by kind then id.
 */
repos: Array<CachedRepo>, 
/**
 * Entries that could not be read as cache entries, each with what is wrong.
 */
problems: Array<ScanProblem>, 
/**
 * Bytes of every blob of every repo, each blob counted once.
 */
sizeOnDisk: number, };

/**
 * One `models--org--name` (or dataset, space) folder.
 */
export type CachedRepo = { repoId: string, kind: RepoKind, path: string, status: CacheStatus, 
/**
 * Bytes of all blobs of this repo, shared blobs counted once, `.incomplete` files included.
 */
sizeOnDisk: number, 
/**
 * Latest modification time of any blob, in Unix seconds.
 */
lastModified: number | null, 
/**
 * Cached revisions: those named by a ref first (in ref order), then the rest, newest first.
 */
revisions: Array<CachedRevision>, 
/**
 * Downloads in progress or interrupted: blob name and bytes so far.
 */
incomplete: Array<IncompleteBlob>, };

/**
 * One commit under `snapshots/`, or one a ref names.
 */
export type CachedRevision = { commit: string, 
/**
 * Branches, tags or pull-request refs (`main`, `v1.0`, `pr/3`) that point at this commit.
 */
refs: Array<string>, status: CacheStatus, files: Array<CachedFile>, 
/**
 * Files this revision should have that are not there: dangling links and files its tree record lists.
 */
missing: Array<string>, 
/**
 * Bytes of the distinct blobs this revision's files use.
 */
sizeOnDisk: number, lastModified: number | null, };

/**
 * One file of a snapshot.
 */
export type CachedFile = { 
/**
 * Path inside the repo, `/`-separated.
 */
path: string, size: number, 
/**
 * The blob it links to (sha256 or git sha1), when it links into `blobs/`.
 */
blob: string | null, };

/**
 * A `blobs/{hash}.incomplete` file.
 */
export type IncompleteBlob = { blob: string, bytes: number, };

/**
 * A cache entry that could not be read as one, and why.
 */
export type ScanProblem = { path: string, message: string, };

/**
 * What to download: a repo, a revision (branch, tag or commit; default `main`), and optional globs.
 */
export type DownloadRequest = { repo: string, revision: string | null, include: Array<string>, exclude: Array<string>, 
/**
 * Exactly these paths (used by repair); empty for all that the globs select.
 */
files: Array<string>, 
/**
 * A direct download from a URL into the app's models folder instead of a hub repo (`repo` is then the id it
 * shows under, `local/{name}`).
 */
url: UrlSource | null, 
/**
 * Remove the models the preview's `room` names (least recently used, nobody's) when the storage limit or the
 * free-space floor asks room for it; without it, such a download is refused before its first byte.
 */
evict: boolean, };

/**
 * What a download would fetch, without fetching or writing anything: shown before the user commits.
 */
export type DownloadPreview = { repo: string, revision: string, commit: string, files: Array<PreviewFile>, bytesTotal: number, 
/**
 * What is not in the cache yet.
 */
bytesToDownload: number, 
/**
 * Free space on the cache's disk.
 */
freeSpace: number, 
/**
 * When the storage limit, the free-space floor or the disk asks room for it: what would be removed.
 */
room: Room | null, };

export type PreviewFile = { path: string, size: number, 
/**
 * Already in the cache (downloaded before, or shared with another revision).
 */
present: boolean, };

export type DownloadState = "queued" | "downloading" | "verifying" | "paused" | "completed" | "failed" | "cancelled";

/**
 * Where one download stands; sent at most ~10 times a second while bytes move, and on every state change.
 */
export type DownloadProgress = { id: number, repo: string, revision: string, 
/**
 * The commit the revision resolved to, once known.
 */
commit: string | null, state: DownloadState, bytesDone: number, bytesTotal: number, filesDone: number, filesTotal: number, 
/**
 * Over the last few seconds.
 */
bytesPerSecond: number, etaSeconds: number | null, error: ErrorPayload | null, 
/**
 * How the bytes came: "Xet", "HTTP", or HTTP after Xet failed, with the reason.
 */
transport: string | null, };

export type LifecycleKind = "queued" | "started" | "paused" | "resumed" | "completed" | "failed" | "cancelled" | "deleted" | "activated" | "deactivated" | "imported";

/**
 * A model's state changed.
 */
export type ModelLifecycle = { kind: LifecycleKind, repo: string, revision: string, downloadId: number | null, error: ErrorPayload | null, };

/**
 * What a [`Downloads`] subscriber receives.
 */
export type DownloadEvent = { "type": "progress", "payload": DownloadProgress } | { "type": "lifecycle", "payload": ModelLifecycle } | { "type": "stale" };

export type ModelType = "text-generation" | "text-to-image" | "image-to-text" | "audio-to-text" | "text-to-audio" | "embedding" | "classification" | "other";

/**
 * Where a model's type came from, from most to least trusted.
 */
export type TypeOrigin = "user" | "hub" | "files" | "config" | "unknown";

export type ModelFormat = "safetensors" | "gguf" | "onnx" | "pytorch" | "other";

/**
 * Where a model comes from.
 */
export type ModelSource = "hugging-face" | "folder" | "imported" | "url" | "ollama";

export type ModelStatus = "queued" | "downloading" | "available" | "partial" | "error" | "active";

/**
 * One model in the library.
 */
export type LibraryModel = { 
/**
 * The repo id, `org/name`.
 */
id: string, 
/**
 * The name part of the id.
 */
displayName: string, source: ModelSource, modelType: ModelType, typeOrigin: TypeOrigin, status: ModelStatus, 
/**
 * The branch or tag of the main revision (`main` first), if a ref names it.
 */
revision: string | null, commit: string | null, 
/**
 * Revisions cached.
 */
revisions: number, 
/**
 * Files of the main revision.
 */
files: number, 
/**
 * Bytes on disk, every revision, shared blobs once.
 */
size: number, format: ModelFormat, 
/**
 * When the last download started (recorded by this app), else when the newest file was written; Unix seconds.
 */
downloadedAt: number | null, 
/**
 * When it was last used: activated, loaded, asked for by a request, served by the mirror, or downloaded
 * ([`crate::library::usage`]); Unix seconds.
 */
lastUsed: number | null, 
/**
 * The repo folder.
 */
path: string, pipelineTag: string | null, libraryName: string | null, architectures: Array<string>, tags: Array<string>, gated: boolean, 
/**
 * The download's failure, for status `error`.
 */
error: ErrorPayload | null, 
/**
 * The download in the queue, for statuses `queued`, `downloading` and `error`.
 */
downloadId: number | null, 
/**
 * When it is an adapter (a LoRA): what it is and the base it runs on.
 */
adapter: Adapter | null, 
/**
 * The adapters linked to it (a base), by id.
 */
adapters: Array<string>, 
/**
 * Pinned: never removed to make room (`mm pin`).
 */
pinned: boolean, };

/**
 * An adapter: a LoRA that runs on a base model, as the library found it and linked it.
 */
export type Adapter = { 
/**
 * `gguf`: a GGUF LoRA llama-server applies; `peft`: a PEFT folder (`adapter_config.json`), for the programs
 * that read them.
 */
format: AdapterFormat, 
/**
 * The base it names (`org/name`), if it names one.
 */
baseNamed: string | null, 
/**
 * The installed model it runs on, when one is linked.
 */
base: string | null, 
/**
 * How the base was found.
 */
linkedBy: LinkedBy | null, 
/**
 * Why no base is linked, with what to do.
 */
problem: string | null, 
/**
 * The GGUF adapter file (what `--lora` takes).
 */
file: string | null, rank: number | null, alpha: number | null, };

export type AdapterFormat = "gguf" | "peft";

/**
 * How an adapter's base was found.
 */
export type LinkedBy = "user" | "named" | "fits";

export type AdapterLink = { 
/**
 * The base's id; `null` goes back to the base the adapter names or fits.
 */
base: string | null, };

/**
 * Everything about one model: the list entry, each cached revision with its files and hashes, and the card.
 */
export type ModelDetails = { model: LibraryModel, revisions: Array<CachedRevision>, 
/**
 * The model card's metadata (license, language, base_model, ...) when the hub gave it.
 */
card: Record<string, unknown> | null, };

export type SortKey = "name" | "size" | "date" | "used";

/**
 * Filters (all optional) and the order of the list.
 */
export type LibraryQuery = { modelType: ModelType | null, status: ModelStatus | null, source: ModelSource | null, 
/**
 * Matches the id, the pipeline tag, the library and the architectures, case-insensitively.
 */
text: string | null, sort: SortKey, descending: boolean, };

/**
 * What a delete frees (or would free, for a dry run).
 */
export type DeleteReport = { id: string, 
/**
 * The revision removed, or none for the whole model.
 */
revision: string | null, commit: string | null, 
/**
 * The model's bytes on disk before and after.
 */
bytesBefore: number, bytesAfter: number, bytesFreed: number, blobsRemoved: number, 
/**
 * True when nothing of the model is left.
 */
wholeModel: boolean, dryRun: boolean, 
/**
 * The adapters linked to it, which have no base once it is deleted whole.
 */
adapters: Array<string>, };

export type FileStatus = "ok" | "corrupt" | "missing" | "unverified";

export type FileCheck = { path: string, blob: string | null, size: number, status: FileStatus, 
/**
 * For corrupt files: the hash the bytes have now.
 */
actual: string | null, };

export type VerifyReport = { id: string, commit: string, files: Array<FileCheck>, bytesChecked: number, 
/**
 * No file is corrupt or missing.
 */
ok: boolean, 
/**
 * The files this check downloaded again (a repair): they were corrupt or missing, and the report is of after.
 */
repaired: Array<string>, };

/**
 * Where a verification stands; sent about every 64 MiB and at the end.
 */
export type VerifyProgress = { id: string, bytesDone: number, bytesTotal: number, filesDone: number, filesTotal: number, };

export type StorageReport = { cacheDir: string, cacheBytes: number, diskFree: number, diskTotal: number, 
/**
 * Every repo, largest first.
 */
models: Array<ModelUsage>, orphanBlobs: Array<LooseFile>, 
/**
 * `.incomplete` files of downloads that are not running and were last written over a day ago.
 */
partialDownloads: Array<LooseFile>, 
/**
 * Revisions no branch or tag points to, of repos where another revision has one.
 */
detachedRevisions: Array<DetachedRevision>, reclaimableBytes: number, };

export type ModelUsage = { id: string, kind: RepoKind, bytes: number, };

export type LooseFile = { repo: string, path: string, bytes: number, };

/**
 * A revision nothing names any more.
 */
export type DetachedRevision = { repo: string, commit: string, 
/**
 * What removing it frees: the blobs no other revision uses.
 */
bytes: number, };

export type CleanReport = { filesRemoved: number, bytesFreed: number, 
/**
 * Detached revisions removed.
 */
revisionsRemoved: number, };

/**
 * The settings as the UI sees them: the token masked.
 */
export type SettingsView = { 
/**
 * The Hugging Face cache to use; empty for the one `HF_HUB_CACHE`/`HF_HOME` name.
 */
cacheDir: string | null, 
/**
 * More Hugging Face caches to list, read-only (a shared or older cache).
 */
libraryFolders: Array<string>, 
/**
 * The hub endpoint; empty for `HF_ENDPOINT` or huggingface.co.
 */
endpoint: string | null, 
/**
 * The HTTP proxy every download goes through (the hub, its CDN, Xet, URLs, the mirror's pull-through); empty
 * for `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`. `NO_PROXY` applies either way. A user and password given in it
 * are kept as the token is, never in the settings file ([`crate::proxy`]).
 */
proxy: string | null, 
/**
 * Downloads running at once.
 */
maxConcurrentDownloads: number, 
/**
 * Download speed limit in bytes per second, for all downloads together; none for no limit.
 */
bandwidthLimit: number | null, 
/**
 * Connections one large file may use at once (1 for a single stream).
 */
connectionsPerFile: number, 
/**
 * Fetch Xet-backed files from the Hub's Xet storage (`HF_HUB_DISABLE_XET=1` turns it off too).
 */
useXet: boolean, 
/**
 * The most the cache and the app's models folder take together, in bytes; a download past it removes the
 * least recently used models nobody uses, once the user agrees. None: no limit.
 */
storageLimit: number | null, 
/**
 * Disk space a download leaves free, in bytes; past it, as past the limit.
 */
minFreeSpace: number | null, 
/**
 * Check each file's hash while downloading (sizes are always checked).
 */
verifyOnDownload: boolean, 
/**
 * Closing the window keeps the app running in the system tray.
 */
keepInTray: boolean, 
/**
 * A desktop notification when a download finishes or fails.
 */
notifyDownloads: boolean, 
/**
 * Files dropped on the window are copied into the app's models folder (else referenced where they are).
 */
copyImports: boolean, 
/**
 * The `llama-server` program that loads GGUF models; empty: the one on `PATH`.
 */
llamaServer: string | null, 
/**
 * Where "Get llama.cpp" finds llama.cpp's releases: a releases API in GitHub's shape; empty for llama.cpp's own.
 */
llamaCppReleases: string | null, 
/**
 * The largest context a load chooses by itself (tokens); the model's own and the free memory may lower it.
 */
maxContext: number, 
/**
 * Unload a model nobody sent a request for this many seconds; 0: never.
 */
idleUnloadSeconds: number, 
/**
 * Models loaded at once at most; memory decides first (one that does not fit unloads the least recently used
 * idle ones).
 */
maxLoaded: number, 
/**
 * Memory (RAM and GPU) loaded models leave free for everything else, in bytes.
 */
memoryReserve: number, 
/**
 * The most memory loaded models may take together, in bytes; none: what the machine has free.
 */
memoryLimit: number | null, 
/**
 * Times a runtime that died is started again (after 1, 2, 4... seconds) before it is left stopped.
 */
restartAttempts: number, 
/**
 * The window runs `mm serve`'s API and model endpoint while the app runs (on this machine's loopback only).
 */
localServer: boolean, 
/**
 * The port of the app's local server.
 */
localServerPort: number, 
/**
 * `mm serve` asks for its token on loopback too (for a machine other users share); the app and `mm` on this
 * machine read it from its 0600 file.
 */
serveRequireToken: boolean, 
/**
 * `hf_…wxyz`, or none when no token is set here.
 */
tokenHint: string | null, 
/**
 * Other machines the window can drive.
 */
machines: Array<MachineEntry>, 
/**
 * Set when the file was unreadable and was replaced by defaults.
 */
warning: string | null, };

/**
 * A change to some settings; absent fields stay, an empty text or 0 limit resets. `token: ""` clears the
 * token.
 */
export type SettingsPatch = { cacheDir: string | null, libraryFolders: Array<string> | null, endpoint: string | null, proxy: string | null, maxConcurrentDownloads: number | null, bandwidthLimit: number | null, connectionsPerFile: number | null, useXet: boolean | null, storageLimit: number | null, minFreeSpace: number | null, verifyOnDownload: boolean | null, keepInTray: boolean | null, notifyDownloads: boolean | null, copyImports: boolean | null, llamaServer: string | null, llamaCppReleases: string | null, maxContext: number | null, idleUnloadSeconds: number | null, maxLoaded: number | null, memoryReserve: number | null, memoryLimit: number | null, restartAttempts: number | null, localServer: boolean | null, localServerPort: number | null, serveRequireToken: boolean | null, token: string | null, };

/**
 * What a setting holds, with its bounds.
 */
export type Kind = { "kind": "flag" } | { "kind": "count", min: number, max: number, } | { "kind": "limit", min: number, } | { "kind": "path" } | { "kind": "paths" } | { "kind": "url" };

/**
 * One setting as `mm config`, the window and the README describe it.
 */
export type SettingInfo = { key: string, kind: Kind, 
/**
 * The default, as `mm config get` shows it (empty: none, or what the environment says).
 */
default: string, 
/**
 * Whether `mm serve`'s API may change it: not one that names a program, a folder or an address (over the API
 * it would run a client's program, or send the hub token or the models anywhere), nor one that guards the
 * server itself.
 */
api: boolean, label: string, help: string, };

/**
 * How a model is run, as its owner set it; what is unset the app chooses.
 */
export type LoadSettings = { 
/**
 * The context in tokens; unset: the largest that fits the free memory, up to `maxContext`.
 */
context: number | null, 
/**
 * Layers on the GPU; unset: as many as fit.
 */
gpuLayers: number | null, 
/**
 * CPU threads for generation.
 */
threads: number | null, 
/**
 * The logical batch size.
 */
batchSize: number | null, 
/**
 * Requests answered at once (the context is shared among them); unset: 1.
 */
parallel: number | null, 
/**
 * Flash Attention: on, off or auto.
 */
flashAttention: FlashAttention | null, 
/**
 * The KV cache's type: f16, q8_0 (about half the memory) or q4_0 (about a quarter).
 */
kvCacheType: KvCacheType | null, 
/**
 * Keep the weights in RAM (never swapped out).
 */
mlock: boolean, 
/**
 * The sampling temperature a request that names none gets.
 */
temperature: number | null, 
/**
 * The default nucleus sampling threshold.
 */
topP: number | null, 
/**
 * The default number of candidates sampled from.
 */
topK: number | null, 
/**
 * The default minimum probability, relative to the likeliest token.
 */
minP: number | null, 
/**
 * The default penalty for repeated tokens (1: none).
 */
repeatPenalty: number | null, 
/**
 * More `llama-server` arguments, checked (changed on the machine only).
 */
extraArgs: Array<string>, };

/**
 * What a load setting holds, with its bounds.
 */
export type LoadKind = { "kind": "count", min: number, max: number, } | { "kind": "number", min: number, max: number, } | { "kind": "choice", choices: string[], } | { "kind": "switch" } | { "kind": "args" };

/**
 * One load setting as `mm load-settings`, the window and the README describe it.
 */
export type LoadSettingInfo = { key: string, kind: LoadKind, 
/**
 * The `llama-server` flag it sets, if one.
 */
flag: string | null, label: string, help: string, };

/**
 * Whether Flash Attention is used.
 */
export type FlashAttention = "on" | "off" | "auto";

/**
 * The type of a KV cache's elements: f16, or llama.cpp's 8- and 4-bit blocks (32 values in 34 or 18 bytes).
 */
export type KvCacheType = "f16" | "q8_0" | "q4_0";

/**
 * What `active.json` says of one type.
 */
export type ActiveEntry = { modelType: ModelType, id: string, 
/**
 * The commit.
 */
revision: string, 
/**
 * The model's snapshot folder.
 */
path: string, 
/**
 * The stable link other programs can use: `{data}/active/{type}`.
 */
link: string, format: ModelFormat, 
/**
 * The largest weight file (the one to load for single-file formats such as GGUF), if any.
 */
primaryFile: string | null, activatedAt: number | null, 
/**
 * While it is loaded: the OpenAI-compatible endpoint serving this type (`http://127.0.0.1:PORT/v1`), the
 * same across switches of the type's model.
 */
endpoint: string | null, };

export type HardwareInfo = { gpus: Array<GpuInfo>, 
/**
 * Why no NVIDIA GPU was found, when none was (e.g. "libnvidia-ml.so.1 not found").
 */
nvidiaNote: string | null, ramTotal: number, ramAvailable: number, cpu: CpuInfo, os: string, diskFree: number, diskTotal: number, 
/**
 * How long the probe took, in milliseconds.
 */
probeMs: number, };

export type GpuInfo = { name: string, vendor: string, vramTotal: number, vramFree: number, driver: string | null, cudaVersion: string | null, computeCapability: string | null, };

export type CpuInfo = { brand: string, physicalCores: number, threads: number, 
/**
 * Vector extensions that matter for CPU inference: avx2, avx512f, fma, f16c, neon, ...
 */
features: Array<string>, };

/**
 * What one model (or one GGUF file of a repo) needs.
 */
export type Requirements = { 
/**
 * "gguf" or "safetensors".
 */
format: string, architecture: string | null, parameters: number, 
/**
 * The quantisation (GGUF) or main dtype (safetensors).
 */
precision: string | null, weightsBytes: number, layers: number | null, maxContext: number | null, 
/**
 * The context the estimate uses.
 */
context: number, kvHeads: number | null, headDim: number | null, 
/**
 * The KV cache's type the estimate uses (a model's load settings may name one).
 */
kvCacheType: KvCacheType, kvCacheBytes: number, computeBytes: number, 
/**
 * weights + KV cache + compute (a GPU adds its reserve).
 */
totalBytes: number, };

export type Fit = "fits-gpu" | "partial-offload" | "cpu-only" | "too-large" | "insufficient-disk";

export type Verdict = { fit: Fit, 
/**
 * For partial offload: how many layers fit on the GPU, of how many.
 */
gpuLayers: number | null, layers: number | null, 
/**
 * The GPU it is measured against (the one with the most memory).
 */
gpu: string | null, 
/**
 * The memory it is measured against.
 */
vram: number, ram: number, 
/**
 * One sentence with the numbers.
 */
summary: string, };

/**
 * The verdict for one model or file, now and at best.
 */
export type FileCompat = { 
/**
 * The GGUF file, when the repo offers several; none for a whole (safetensors) model.
 */
file: string | null, fileBytes: number, requirements: Requirements, 
/**
 * Against the memory free now.
 */
now: Verdict, 
/**
 * Against the total memory.
 */
best: Verdict, };

export type CompatReport = { model: string, entries: Array<FileCompat>, 
/**
 * Bytes still to download (0 for a model on disk).
 */
downloadBytes: number, diskFree: number, };

/**
 * The fit of one library model, for its badge.
 */
export type ModelFit = { fit: Fit, summary: string, 
/**
 * What it took the last time it was loaded here, beside the estimate.
 */
measured: Measurement | null, };

export type SearchSort = "downloads" | "likes" | "trending" | "updated";

/**
 * What to search for. Every field but `text` is optional; an empty `text` lists the most popular models.
 */
export type SearchQuery = { text: string, 
/**
 * A user or organisation: only its models.
 */
author: string | null, 
/**
 * A pipeline tag such as `text-generation` or `automatic-speech-recognition`.
 */
task: string | null, 
/**
 * A library such as `gguf`, `transformers`, `diffusers`.
 */
library: string | null, 
/**
 * Further tags every result must carry.
 */
tags: Array<string>, sort: SearchSort, 
/**
 * Results per page: 1 to 100, default 30.
 */
limit: number | null, };

/**
 * One search result.
 */
export type SearchHit = { id: string, author: string | null, 
/**
 * The pipeline tag, such as `text-generation`.
 */
task: string | null, library: string | null, downloads: number, likes: number, 
/**
 * ISO 8601, as the hub sends it.
 */
lastModified: string | null, 
/**
 * Needs a token with access (the hub's `gated` is `"auto"` or `"manual"`).
 */
gated: boolean, 
/**
 * Some snapshot of it is complete in the local cache.
 */
installed: boolean, };

/**
 * A page of results, and the cursor of the next one.
 */
export type SearchPage = { models: Array<SearchHit>, 
/**
 * Pass back as `next` for the following page; absent on the last one.
 */
next: string | null, };

export type RepoFile = { path: string, size: number, 
/**
 * This file's content is already in the local cache.
 */
installed: boolean, };

/**
 * One quantisation of a GGUF model: its files (several when split into shards) and their total size.
 */
export type Quantisation = { 
/**
 * As the file names say it: `Q4_K_M`, `IQ2_XXS`, `F16`; the file's stem when they do not.
 */
name: string, files: Array<string>, size: number, };

export type RepoDetails = { id: string, revision: string, commit: string, gated: boolean, task: string | null, library: string | null, license: string | null, tags: Array<string>, files: Array<RepoFile>, totalSize: number, 
/**
 * The GGUF quantisations offered, smallest first; empty when the repo has no GGUF files.
 */
quantisations: Array<Quantisation>, 
/**
 * The README as safe HTML: no scripts, no raw HTML, links only to http(s) and mail.
 */
cardHtml: string | null, 
/**
 * Why there is no card (none in the repo, or it could not be read).
 */
cardNote: string | null, 
/**
 * The repo's page on the hub.
 */
pageUrl: string, 
/**
 * Free space where downloads go.
 */
diskFree: number, 
/**
 * Every file is already in the local cache.
 */
installed: boolean, };

export type CatalogEntry = { id: string, name: string, type: ModelType, 
/**
 * What is downloaded: these files, or the whole repo when empty.
 */
files: Array<string>, 
/**
 * The download size in bytes, as the hub listed it when the entry was chosen.
 */
size: number, purpose: string, license: string | null, 
/**
 * Already in the local cache (set when the catalog is read for a cache).
 */
installed: boolean, };

export type StarterCatalog = { entries: Array<CatalogEntry>, 
/**
 * The hub cannot be used (`HF_HUB_OFFLINE`): the catalog shows, but nothing in it can be downloaded.
 */
offline: boolean, };

/**
 * A direct download: the URL, an optional checksum to verify, an optional file name.
 */
export type UrlSource = { url: string, sha256: string | null, md5: string | null, 
/**
 * The file name to store it under (else from `Content-Disposition`, else from the URL).
 */
name: string | null, };

export type ImportOptions = { 
/**
 * Copy into the app's models folder instead of referencing the file where it is.
 */
copy: boolean, 
/**
 * The type to give every imported model, instead of the guessed one.
 */
modelType: ModelType | null, };

export type ImportStatus = "imported" | "duplicate" | "failed" | "cancelled";

/**
 * What happened to one path of a batch.
 */
export type ImportOutcome = { path: string, status: ImportStatus, 
/**
 * The model's id: the new one, or the one it duplicates.
 */
id: string | null, 
/**
 * For `duplicate` and `failed`: what to tell the user.
 */
error: ErrorPayload | null, };

/**
 * What an import is doing with a path's bytes.
 */
export type ImportPhase = "hashing" | "copying";

/**
 * Progress of one path of a batch.
 */
export type ImportProgress = { path: string, phase: ImportPhase, bytesDone: number, bytesTotal: number, 
/**
 * 1-based position in the batch, and the batch's size.
 */
index: number, count: number, };

/**
 * Whether the Ollama server answers, and where it is looked for.
 */
export type OllamaStatus = { host: string, available: boolean, };

/**
 * Another machine's `mm serve`, as the user added it.
 */
export type MachineEntry = { 
/**
 * What the user calls it ("gpu-server").
 */
name: string, 
/**
 * `http://host:8765`.
 */
url: string, };

/**
 * The machines a face can drive, and which one it drives now.
 */
export type MachineList = { 
/**
 * The address of the machine driven now; none for this machine.
 */
current: string | null, machines: Array<MachineEntry>, 
/**
 * What this machine's endpoint calls the driven machine's models: `NAME/` before their ids (see
 * [`endpoint_prefix`]); none for this machine.
 */
endpointPrefix: string | null, };

/**
 * What serves a loaded model.
 */
export type RuntimeKind = "llama-server" | "ollama";

export type RuntimeState = "loading" | "ready" | "unhealthy" | "draining" | "stopped";

/**
 * What a runtime takes.
 */
export type MemoryUse = { 
/**
 * Resident memory of the runtime's process (for Ollama: the model's size in RAM as the server reports it).
 */
ram: number, 
/**
 * GPU memory it holds (NVML, or Ollama's report), when there is a GPU.
 */
gpu: number | null, };

/**
 * One model's estimate against what it took, the last time it was loaded here.
 */
export type Measurement = { id: string, 
/**
 * The weight file it ran from.
 */
file: string, context: number, gpuLayers: number, estimateBytes: number, 
/**
 * The peak seen while it was loaded.
 */
measured: MemoryUse, 
/**
 * Unix seconds.
 */
at: number, };

/**
 * What a model is started with, and why.
 */
export type LaunchPlan = { context: number, 
/**
 * Layers on the GPU (0: the CPU only).
 */
gpuLayers: number, layers: number | null, 
/**
 * What the estimate says the model takes at this context: weights + KV cache + compute.
 */
estimateBytes: number, 
/**
 * One sentence: where it runs and why this context.
 */
reason: string, 
/**
 * How an embedding model whose file names no pooling pools its tokens (`mean`).
 */
pooling: string | null, 
/**
 * The model's load settings it was planned with (a change to them starts it again on its next request).
 */
load: LoadSettings, };

/**
 * One loaded model, as `mm ps` lists it.
 */
export type LoadedModel = { modelType: ModelType, id: string, runtime: RuntimeKind, state: RuntimeState, 
/**
 * The type's own endpoint, when this model is the one it serves: `http://127.0.0.1:PORT/v1` (every model is
 * served by name on `mm serve`'s `/v1` too).
 */
endpoint: string | null, 
/**
 * The runtime's process (llama-server).
 */
pid: number | null, 
/**
 * The command line it was started with.
 */
command: string | null, 
/**
 * The context and GPU layers it runs with, and the estimate for them.
 */
plan: LaunchPlan | null, estimateBytes: number, 
/**
 * The most it was seen to take (the peak since it was loaded).
 */
measured: MemoryUse | null, 
/**
 * What the scheduler counts it as taking: the estimate, or once measured, its peak and a margin.
 */
needBytes: number, 
/**
 * Requests answered.
 */
requests: number, 
/**
 * Requests being answered now: a busy model is never unloaded for another.
 */
busy: number, 
/**
 * Never unloaded for another model (the `pinned` list of the settings; `mm load --pin`).
 */
pinned: boolean, 
/**
 * When it unloads if no request comes (unix seconds; none: it stays).
 */
expiresAt: number | null, restarts: number, 
/**
 * Unix seconds.
 */
loadedAt: number, lastUsed: number, 
/**
 * Who loaded it: "app" (stopped when the app quits), "mm", "serve".
 */
owner: string, 
/**
 * Why it is unhealthy or stopped.
 */
error: string | null, };

/**
 * A change to the loaded set: a model's state now, or none when it was unloaded.
 */
export type RuntimeChange = { id: string, loaded: LoadedModel | null, };

export type DeleteOptions = { 
/**
 * Only this revision (a branch, tag or commit); blobs other revisions use are kept.
 */
revision: string | null, 
/**
 * Say what would be freed, and delete nothing.
 */
dryRun: boolean, };

export type TypeChange = { 
/**
 * The type to remember; `null` goes back to the inferred one.
 */
modelType: ModelType | null, };

export type VerifyOptions = { 
/**
 * The revision to check (default: the main one).
 */
revision: string | null, 
/**
 * Download the corrupt or missing files again, and check once more.
 */
repair: boolean, };

/**
 * A download queued, or joined.
 */
export type Started = { id: number, 
/**
 * The same download was already queued or running: this is that one.
 */
joined: boolean, download: DownloadProgress, };

export type CancelRepo = { 
/**
 * `org/name`, or a hub URL of it.
 */
repo: string, };

/**
 * What cancelling every download of a repo did.
 */
export type RepoCancelled = { repo: string, 
/**
 * The `mm download` processes stopped.
 */
stopped: Array<number>, 
/**
 * The downloads of the machine itself that were cancelled.
 */
cancelled: Array<number>, 
/**
 * The partial files deleted.
 */
bytesFreed: number, };

export type Activate = { 
/**
 * The model id.
 */
id: string, 
/**
 * The revision (default: the main one).
 */
revision: string | null, 
/**
 * The type it serves (default: its own). A type in the path wins over this one.
 */
modelType: ModelType | null, };

export type Load = { 
/**
 * A model type (its active model; default text-generation) or a model id (activated, then loaded).
 */
target: string | null, 
/**
 * The context in tokens (default: the largest that fits the memory free now).
 */
context: number | null, 
/**
 * Never unloaded for another model until it is unloaded.
 */
pin: boolean, };

export type Unload = { 
/**
 * A model type or a loaded model's id (default: everything loaded).
 */
target: string | null, };

export type CompatAsk = { 
/**
 * A hub repo (`org/name`), a library id, or an absolute path on the machine.
 */
target: string, revision: string | null, 
/**
 * The context length to size the KV cache for (default: the model's own, capped).
 */
context: number | null, 
/**
 * Load settings to size it for, as a form holds them before they are kept (default: the model's own).
 */
loadSettings: LoadSettings | null, };

export type SearchAsk = { query: SearchQuery, 
/**
 * The `next` of the previous page.
 */
next: string | null, };

export type Revision = { 
/**
 * A branch, tag or commit (default: main).
 */
revision: string | null, };

export type Pull = { 
/**
 * The model, e.g. `llama3.2:1b`.
 */
name: string, };

/**
 * What a move did.
 */
export type MoveReport = { id: string, from: string, to: string, 
/**
 * Blobs copied (and hashed) now; those a resumed move found copied already are not counted.
 */
blobsCopied: number, bytesCopied: number, };

export type MoveTo = { 
/**
 * One of the library's folders: the cache, or a library folder (as the settings name it).
 */
folder: string, };

/**
 * What this machine holds and does, in numbers.
 */
export type Statistics = { models: number, byType: { [key in string]: number }, byStatus: { [key in string]: number }, bySource: { [key in string]: number }, 
/**
 * The bytes of each folder the library reads (the cache, the library folders, the app's models folder).
 */
folders: Array<FolderBytes>, downloadsRunning: number, downloadsQueued: number, modelsLoaded: number, 
/**
 * Requests each loaded model answered since it was loaded.
 */
requests: { [key in string]: number }, 
/**
 * Files this process's Hub mirror served since it started.
 */
mirrorHits: number, };

export type FolderBytes = { path: string, bytes: number, 
/**
 * `cache` (where downloads go), `library-folder`, or `models-folder` (imports and URL downloads); a model of
 * the first two moves between them (`move_model`).
 */
kind: string, };

/**
 * A model a download would remove to make room.
 */
export type Eviction = { id: string, bytes: number, 
/**
 * When it was last used, in Unix seconds.
 */
lastUsed: number | null, };

/**
 * What a download needs beyond what is free under the limits, and what would make it.
 */
export type Room = { 
/**
 * The bytes to free.
 */
needBytes: number, 
/**
 * Which limit asks it: `storageLimit`, `minFreeSpace`, or the disk itself.
 */
why: string, 
/**
 * What would be removed, least recently used first.
 */
evict: Array<Eviction>, 
/**
 * What would still be missing after removing every model that may go (0: they make room).
 */
shortfall: number, };

/**
 * A `llama-server` this machine can run models with.
 */
export type RuntimeBuild = { 
/**
 * A managed build's folder name (`b6000-cpu`); else `setting` or `path`.
 */
name: string, 
/**
 * The `llama-server` program.
 */
path: string, origin: BuildOrigin, 
/**
 * What `llama-server --version` says after `version: ` (`6543 (a1b2c3d)`).
 */
version: string | null, 
/**
 * `cpu`, `cuda`, `vulkan`, `rocm` or `metal`: a managed build's own, else read from its devices.
 */
backend: string, 
/**
 * The devices `--list-devices` lists (`CUDA0: NVIDIA H100 (81000 MiB, 80000 MiB free)`).
 */
devices: Array<string>, 
/**
 * A managed build's release tag.
 */
release: string | null, 
/**
 * A managed build's archive digest (hex).
 */
sha256: string | null, 
/**
 * Why `--version` failed.
 */
error: string | null, };

/**
 * Where a build was found.
 */
export type BuildOrigin = "path" | "setting" | "managed";

/**
 * How far a [`get`] is: `download` (bytes of total), `unpack`, `try`.
 */
export type GetProgress = { stage: string, bytes: number, total: number, };

/**
 * The llama.cpp builds of a machine.
 */
export type Runtimes = { builds: Array<RuntimeBuild>, 
/**
 * The `llama-server` that loads models (none: there is none here).
 */
default: string | null, 
/**
 * What a rollback goes back to (`path`: the one on `PATH`).
 */
previous: string | null, 
/**
 * Where Get llama.cpp looks.
 */
releases: string, };

export type GetRuntime = { 
/**
 * A release tag (`b6000`); default the latest.
 */
release: string | null, 
/**
 * `cpu`, `cuda`, `vulkan`, `rocm` or `metal`; default chosen from the GPUs, the CPU build as the fallback.
 */
backend: string | null, };

export type UseRuntime = { 
/**
 * A build's name as the list gives it (`b6000-cpu`, or `path` for the one on `PATH`).
 */
name: string, };

export type RuntimeRemoved = { name: string, bytesFreed: number, };

/** The operations of the table (`crates/core/src/operations.rs`), by name. */
export type OperationName =
  | 'models'
  | 'model'
  | 'delete'
  | 'set_type'
  | 'pin_model'
  | 'verify'
  | 'link_adapter'
  | 'load_settings'
  | 'set_load_settings'
  | 'preview'
  | 'start'
  | 'downloads'
  | 'download'
  | 'pause'
  | 'resume'
  | 'cancel'
  | 'cancel_repo'
  | 'active'
  | 'active_of'
  | 'activate'
  | 'activate_as'
  | 'deactivate'
  | 'loaded'
  | 'load'
  | 'unload'
  | 'pin'
  | 'runtimes'
  | 'get_runtime'
  | 'use_runtime'
  | 'rollback_runtime'
  | 'remove_runtime'
  | 'compat'
  | 'fit'
  | 'system'
  | 'storage'
  | 'move_model'
  | 'stats'
  | 'clean'
  | 'search'
  | 'repo'
  | 'catalog'
  | 'ollama'
  | 'ollama_pull';

/** Every setting: its kind and bounds, default, whether the API may change it, label and help. */
export const SETTINGS: SettingInfo[] = [
  {
    "key": "cacheDir",
    "kind": {
      "kind": "path"
    },
    "default": "",
    "api": false,
    "label": "Cache folder",
    "help": "the Hugging Face cache (default: HF_HUB_CACHE, HF_HOME)"
  },
  {
    "key": "libraryFolders",
    "kind": {
      "kind": "paths"
    },
    "default": "",
    "api": false,
    "label": "Library folders",
    "help": "more caches and model folders, read-only"
  },
  {
    "key": "endpoint",
    "kind": {
      "kind": "url"
    },
    "default": "",
    "api": false,
    "label": "Hub endpoint",
    "help": "the hub (default: HF_ENDPOINT, else huggingface.co)"
  },
  {
    "key": "proxy",
    "kind": {
      "kind": "url"
    },
    "default": "",
    "api": false,
    "label": "Proxy",
    "help": "the HTTP proxy downloads go through, as http://USER:PASSWORD@HOST:PORT (default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)"
  },
  {
    "key": "maxConcurrentDownloads",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 16
    },
    "default": "3",
    "api": true,
    "label": "Downloads at once",
    "help": "downloads running at once"
  },
  {
    "key": "bandwidthLimit",
    "kind": {
      "kind": "limit",
      "min": 10000
    },
    "default": "",
    "api": true,
    "label": "Speed limit",
    "help": "bytes per second for all downloads together (0: none)"
  },
  {
    "key": "connectionsPerFile",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 64
    },
    "default": "16",
    "api": true,
    "label": "Connections per large file",
    "help": "connections one large file uses at most"
  },
  {
    "key": "useXet",
    "kind": {
      "kind": "flag"
    },
    "default": "true",
    "api": true,
    "label": "Download from the Hub's Xet storage",
    "help": "fetch Xet-backed files from the Hub's Xet storage"
  },
  {
    "key": "storageLimit",
    "kind": {
      "kind": "limit",
      "min": 1048576
    },
    "default": "",
    "api": true,
    "label": "Storage limit",
    "help": "the most the cache and the models folder take (such as 200GB; 0: none)"
  },
  {
    "key": "minFreeSpace",
    "kind": {
      "kind": "limit",
      "min": 1048576
    },
    "default": "",
    "api": true,
    "label": "Free space kept",
    "help": "disk space downloads leave free (such as 20GB; 0: none)"
  },
  {
    "key": "verifyOnDownload",
    "kind": {
      "kind": "flag"
    },
    "default": "true",
    "api": true,
    "label": "Verify while downloading",
    "help": "hash each file as it arrives"
  },
  {
    "key": "keepInTray",
    "kind": {
      "kind": "flag"
    },
    "default": "true",
    "api": true,
    "label": "Keep running in the tray",
    "help": "closing the window keeps the app in the tray"
  },
  {
    "key": "notifyDownloads",
    "kind": {
      "kind": "flag"
    },
    "default": "true",
    "api": true,
    "label": "Notify when a download ends",
    "help": "a desktop notification when a download finishes or fails"
  },
  {
    "key": "copyImports",
    "kind": {
      "kind": "flag"
    },
    "default": "false",
    "api": true,
    "label": "Copy dropped files",
    "help": "dropped files are copied into the library, else used where they are"
  },
  {
    "key": "llamaServer",
    "kind": {
      "kind": "path"
    },
    "default": "",
    "api": false,
    "label": "llama-server program",
    "help": "the program that loads GGUF models (default: llama-server on PATH)"
  },
  {
    "key": "llamaCppReleases",
    "kind": {
      "kind": "url"
    },
    "default": "",
    "api": false,
    "label": "llama.cpp releases",
    "help": "where Get llama.cpp looks (default: github.com/ggml-org/llama.cpp's releases)"
  },
  {
    "key": "maxContext",
    "kind": {
      "kind": "count",
      "min": 256,
      "max": 16777216
    },
    "default": "8192",
    "api": true,
    "label": "Largest context (tokens)",
    "help": "the largest context a load picks by itself"
  },
  {
    "key": "idleUnloadSeconds",
    "kind": {
      "kind": "count",
      "min": 0,
      "max": 18446744073709551615
    },
    "default": "0",
    "api": true,
    "label": "Unload after idle (seconds)",
    "help": "unload a model idle this long (0: never)"
  },
  {
    "key": "maxLoaded",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 16
    },
    "default": "4",
    "api": true,
    "label": "Models loaded at once",
    "help": "models loaded at once at most; memory decides first"
  },
  {
    "key": "memoryReserve",
    "kind": {
      "kind": "count",
      "min": 0,
      "max": 18446744073709551615
    },
    "default": "1073741824",
    "api": true,
    "label": "Memory kept free (bytes)",
    "help": "RAM and GPU memory loaded models leave for everything else"
  },
  {
    "key": "memoryLimit",
    "kind": {
      "kind": "limit",
      "min": 1048576
    },
    "default": "",
    "api": true,
    "label": "Memory for models (bytes)",
    "help": "the most loaded models take together (0: what is free)"
  },
  {
    "key": "restartAttempts",
    "kind": {
      "kind": "count",
      "min": 0,
      "max": 100
    },
    "default": "3",
    "api": true,
    "label": "Restarts after a crash",
    "help": "restarts of a runtime that died"
  },
  {
    "key": "localServer",
    "kind": {
      "kind": "flag"
    },
    "default": "false",
    "api": false,
    "label": "Local server",
    "help": "the app serves the model endpoint (/v1, /api) on this machine while it runs"
  },
  {
    "key": "localServerPort",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 65535
    },
    "default": "8765",
    "api": false,
    "label": "Local server port",
    "help": "the port of the app's local server"
  },
  {
    "key": "serveRequireToken",
    "kind": {
      "kind": "flag"
    },
    "default": "false",
    "api": false,
    "label": "mm serve asks for its token on this machine too",
    "help": "mm serve needs its token on loopback too"
  }
];

/** Every load setting of a model: its kind and bounds, llama-server flag, label and help. */
export const LOAD_SETTINGS: LoadSettingInfo[] = [
  {
    "key": "context",
    "kind": {
      "kind": "count",
      "min": 64,
      "max": 16777216
    },
    "flag": null,
    "label": "Context (tokens)",
    "help": "the context it is started with (default: the largest that fits)"
  },
  {
    "key": "gpuLayers",
    "kind": {
      "kind": "count",
      "min": 0,
      "max": 999
    },
    "flag": null,
    "label": "GPU layers",
    "help": "layers on the GPU, 0 for the CPU only (default: as many as fit)"
  },
  {
    "key": "threads",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 1024
    },
    "flag": "--threads",
    "label": "Threads",
    "help": "CPU threads for generation"
  },
  {
    "key": "batchSize",
    "kind": {
      "kind": "count",
      "min": 32,
      "max": 65536
    },
    "flag": "--batch-size",
    "label": "Batch size",
    "help": "tokens the prompt is read in at once"
  },
  {
    "key": "parallel",
    "kind": {
      "kind": "count",
      "min": 1,
      "max": 64
    },
    "flag": null,
    "label": "Parallel requests",
    "help": "requests answered at once, sharing the context (default: 1)"
  },
  {
    "key": "flashAttention",
    "kind": {
      "kind": "choice",
      "choices": [
        "on",
        "off",
        "auto"
      ]
    },
    "flag": "--flash-attn",
    "label": "Flash Attention",
    "help": "on, off or auto"
  },
  {
    "key": "kvCacheType",
    "kind": {
      "kind": "choice",
      "choices": [
        "f16",
        "q8_0",
        "q4_0"
      ]
    },
    "flag": "--cache-type-k",
    "label": "KV cache type",
    "help": "f16, q8_0 (half the memory) or q4_0 (a quarter)"
  },
  {
    "key": "mlock",
    "kind": {
      "kind": "switch"
    },
    "flag": "--mlock",
    "label": "Lock in memory",
    "help": "keep the weights in RAM, never swapped"
  },
  {
    "key": "temperature",
    "kind": {
      "kind": "number",
      "min": 0.0,
      "max": 5.0
    },
    "flag": "--temp",
    "label": "Temperature",
    "help": "default sampling temperature"
  },
  {
    "key": "topP",
    "kind": {
      "kind": "number",
      "min": 0.0,
      "max": 1.0
    },
    "flag": "--top-p",
    "label": "Top P",
    "help": "default top-p"
  },
  {
    "key": "topK",
    "kind": {
      "kind": "count",
      "min": 0,
      "max": 1000
    },
    "flag": "--top-k",
    "label": "Top K",
    "help": "default top-k (0: all)"
  },
  {
    "key": "minP",
    "kind": {
      "kind": "number",
      "min": 0.0,
      "max": 1.0
    },
    "flag": "--min-p",
    "label": "Min P",
    "help": "default min-p"
  },
  {
    "key": "repeatPenalty",
    "kind": {
      "kind": "number",
      "min": 0.0,
      "max": 10.0
    },
    "flag": "--repeat-penalty",
    "label": "Repeat penalty",
    "help": "default repeat penalty (1: none)"
  },
  {
    "key": "extraArgs",
    "kind": {
      "kind": "args"
    },
    "flag": null,
    "label": "More runtime arguments",
    "help": "more llama-server flags, such as --rope-scaling linear (on the machine only)"
  }
];
