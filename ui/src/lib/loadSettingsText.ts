// Load settings as text: what a field shows for a value, and a field's text as a value (checked against its row's
// bounds, as the core checks them), with the extra arguments split as the core splits them.
import type { LoadSettingInfo, LoadSettings } from './bindings';

export const emptyLoadSettings = (): LoadSettings => ({
  context: null,
  gpuLayers: null,
  threads: null,
  batchSize: null,
  parallel: null,
  flashAttention: null,
  kvCacheType: null,
  mlock: false,
  temperature: null,
  topP: null,
  topK: null,
  minP: null,
  repeatPenalty: null,
  extraArgs: [],
});

/** Splits extra arguments as the Rust side does: spaces separate, quotes keep spaces. */
export function splitArgs(text: string): string[] | null {
  const args: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = null;
      else word = (word ?? '') + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word = word ?? '';
    } else if (/\s/.test(c)) {
      if (word !== null) args.push(word);
      word = null;
    } else word = (word ?? '') + c;
  }
  if (quote) return null;
  if (word !== null) args.push(word);
  return args;
}

export const joinArgs = (args: string[]): string => args.map((a) => (a.includes(' ') || a === '' ? `'${a}'` : a)).join(' ');

/** The text a field shows for a value. */
export function fieldText(settings: LoadSettings, row: LoadSettingInfo): string {
  const value = (settings as Record<string, unknown>)[row.key];
  if (row.kind.kind === 'args') return joinArgs(value as string[]);
  return value === null || value === undefined ? '' : String(value);
}

/** A field's text as its value, or why it is not one. */
export function parseField(row: LoadSettingInfo, text: string): { value: unknown } | { problem: string } {
  const t = text.trim();
  switch (row.kind.kind) {
    case 'args': {
      const args = splitArgs(text);
      return args ? { value: args } : { problem: 'a quote is not closed' };
    }
    case 'switch':
      return { value: t === 'true' };
    case 'choice':
      return { value: t === '' ? null : t };
    case 'count':
    case 'number': {
      if (t === '') return { value: null };
      const n = Number(t);
      const { min, max } = row.kind;
      if (!Number.isFinite(n) || (row.kind.kind === 'count' && !Number.isInteger(n))) {
        return { problem: row.kind.kind === 'count' ? 'a whole number' : 'a number' };
      }
      if (n < min || n > max) return { problem: `from ${min} to ${max}` };
      return { value: n };
    }
  }
}

