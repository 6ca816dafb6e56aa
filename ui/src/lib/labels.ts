// Words for the core's enum values, as people read them.
import type { Fit, LinkedBy, ModelFormat, ModelSource, ModelStatus, ModelType, RuntimeState, TypeOrigin } from './bindings';

export const TYPE_LABELS: Record<ModelType, string> = {
  'text-generation': 'Text generation',
  'text-to-image': 'Text to image',
  'image-to-text': 'Image to text',
  'audio-to-text': 'Speech to text',
  'text-to-audio': 'Text to speech',
  embedding: 'Embedding',
  classification: 'Classification',
  other: 'Other',
};

export const STATUS_LABELS: Record<ModelStatus, string> = {
  queued: 'Queued',
  downloading: 'Downloading',
  available: 'Available',
  partial: 'Partial',
  error: 'Error',
  active: 'Active',
};

export const FORMAT_LABELS: Record<ModelFormat, string> = {
  safetensors: 'safetensors',
  gguf: 'GGUF',
  onnx: 'ONNX',
  pytorch: 'PyTorch',
  other: '—',
};

export const ORIGIN_LABELS: Record<TypeOrigin, string> = {
  user: 'set by you',
  hub: 'from the hub',
  files: 'from its files',
  config: 'from config.json',
  unknown: 'unknown',
};

export const MODEL_TYPES = Object.keys(TYPE_LABELS) as ModelType[];
export const MODEL_STATUSES = Object.keys(STATUS_LABELS) as ModelStatus[];

export const FIT_LABELS: Record<Fit, string> = {
  'fits-gpu': 'Fits GPU',
  'partial-offload': 'Partial GPU',
  'cpu-only': 'CPU only',
  'too-large': 'Too large',
  'insufficient-disk': 'No disk space',
};

export const SOURCE_LABELS: Record<ModelSource, string> = {
  'hugging-face': 'Hugging Face',
  folder: 'library folder',
  imported: 'imported',
  url: 'URL',
  ollama: 'Ollama',
};

export const RUNTIME_STATE_LABELS: Record<RuntimeState, string> = {
  loading: 'Loading',
  ready: 'Serving',
  unhealthy: 'Unhealthy',
  draining: 'Unloading',
  stopped: 'Stopped',
};

/** How an adapter's base was found. */
export const LINKED_BY: Record<LinkedBy, string> = {
  user: 'linked by you',
  named: 'the adapter names it',
  fits: 'the only installed model it fits',
};
