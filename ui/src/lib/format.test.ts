import { describe, expect, it } from 'vitest';
import { formatAgo, formatBytes, gpuLabel, memoryLine, shortCommit } from './format';

// The same cases as crates/core/src/format.rs, so the window and the CLI print sizes alike.
describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1.00 kB'],
    [1536, '1.54 kB'],
    [4_920_000_000, '4.92 GB'],
    [999_999, '1.00 MB'],
    [123_456_789, '123 MB'],
  ])('%d bytes is %s', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });
});

describe('formatAgo', () => {
  it.each([
    [100, 100, 'just now'],
    [0, 300, '5 min ago'],
    [0, 3600, '1 hour ago'],
    [0, 3 * 86_400, '3 days ago'],
    [0, 400 * 86_400, '1 year ago'],
    [200, 100, 'just now'],
  ])('%d seen at %d is %s', (then, now, text) => {
    expect(formatAgo(then, now)).toBe(text);
  });
});

it('shortens commits to seven characters', () => {
  expect(shortCommit('0123456789abcdef')).toBe('0123456');
});

describe('gpuLabel', () => {
  it('names the vendor once', () => {
    expect(gpuLabel({ name: 'NVIDIA H100 80GB HBM3', vendor: 'NVIDIA' })).toBe('NVIDIA H100 80GB HBM3');
    expect(gpuLabel({ name: 'RTX 4090', vendor: 'NVIDIA' })).toBe('NVIDIA RTX 4090');
    expect(gpuLabel({ name: 'nvidia GeForce', vendor: 'NVIDIA' })).toBe('nvidia GeForce');
  });
});

describe('memoryLine', () => {
  it('puts what was measured beside the estimate, with how far off it was', () => {
    expect(memoryLine({ measured: null, estimateBytes: 269_000_000 })).toBe('measuring… · estimate 269 MB');
    expect(memoryLine({ measured: { ram: 18_500_000, gpu: null }, estimateBytes: 269_000_000 })).toBe(
      '18.5 MB measured · estimate 269 MB (-93%)',
    );
    expect(memoryLine({ measured: { ram: 1_000_000_000, gpu: 5_000_000_000 }, estimateBytes: 5_000_000_000 })).toBe(
      '6.00 GB measured (5.00 GB on the GPU) · estimate 5.00 GB (+20%)',
    );
    expect(memoryLine({ measured: { ram: 100, gpu: null }, estimateBytes: 0 })).toBe('100 B measured · no estimate');
  });
});
