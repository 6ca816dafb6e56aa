// Human-readable sizes and times: the twin of crates/core/src/format.rs, tested against the same cases.

const UNITS = ['kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** A byte count in decimal units, as the hub shows sizes: `512 B`, `1.54 kB`, `4.92 GB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  let value = n / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** A GPU's name with its vendor once, the twin of `GpuInfo::label`: NVML's names already start with "NVIDIA". */
export function gpuLabel(g: { name: string; vendor: string }): string {
  return g.name.toLowerCase().startsWith(g.vendor.toLowerCase()) ? g.name : `${g.vendor} ${g.name}`;
}

/** How long ago `then` was, relative to `now` (both Unix seconds). */
export function formatAgo(then: number, now: number): string {
  const s = Math.max(0, now - then);
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return plural(Math.floor(s / 3600), 'hour');
  if (s < 2_592_000) return plural(Math.floor(s / 86_400), 'day');
  if (s < 31_536_000) return plural(Math.floor(s / 2_592_000), 'month');
  return plural(Math.floor(s / 31_536_000), 'year');
}

/** A commit shortened the way git shows it. */
export const shortCommit = (commit: string) => commit.slice(0, 7);

/** A duration in seconds, short: `45 s`, `3 min 20 s`, `2 h 5 min` (as crates/core/src/format.rs). */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** A count as the hub shows downloads and likes: `950`, `12.3k`, `4.5M` (as crates/core/src/format.rs). */
export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 999_950) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  return `${(n / 1e6).toFixed(1).replace(/\.0$/, '')}M`;
}

/** The date part of an ISO 8601 time, as `2026-06-30`. */
export const isoDate = (iso: string | null) => (iso ? iso.slice(0, 10) : '');

/** What a loaded model takes, measured, beside what the estimate said: "1.10 GB measured · estimate 1.30 GB (-15%)". */
export function memoryLine(m: { measured: { ram: number; gpu: number | null } | null; estimateBytes: number }): string {
  const estimate = m.estimateBytes > 0 ? `estimate ${formatBytes(m.estimateBytes)}` : 'no estimate';
  if (!m.measured) return `measuring… · ${estimate}`;
  const used = m.measured.ram + (m.measured.gpu ?? 0);
  const gpu = m.measured.gpu ? ` (${formatBytes(m.measured.gpu)} on the GPU)` : '';
  const off = m.estimateBytes > 0 ? ` (${used >= m.estimateBytes ? '+' : ''}${Math.round((used / m.estimateBytes - 1) * 100)}%)` : '';
  return `${formatBytes(used)} measured${gpu} · ${estimate}${off}`;
}
