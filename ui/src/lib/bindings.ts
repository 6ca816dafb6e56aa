// Generated from the Rust types in crates/core (src/bindings.rs). Do not edit by hand:
// `UPDATE_BINDINGS=1 cargo test -p mm-core --test bindings` rewrites it.

/**
 * What kind of failure this is, stable across releases: the UI and scripts branch on it.
 */
export type ErrorCode = "network" | "auth" | "not-found" | "insufficient-space" | "permission" | "checksum-mismatch" | "invalid-input" | "cancelled" | "io" | "internal";

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
export type DownloadRequest = { repo: string, revision: string | null, include: Array<string>, exclude: Array<string>, };

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
freeSpace: number, };

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
bytesPerSecond: number, etaSeconds: number | null, error: ErrorPayload | null, };

export type LifecycleKind = "queued" | "started" | "paused" | "resumed" | "completed" | "failed" | "cancelled" | "deleted";

/**
 * A model's state changed.
 */
export type ModelLifecycle = { kind: LifecycleKind, repo: string, revision: string, downloadId: number | null, error: ErrorPayload | null, };

/**
 * What a [`Downloads`] subscriber receives.
 */
export type DownloadEvent = { "type": "progress", "payload": DownloadProgress } | { "type": "lifecycle", "payload": ModelLifecycle };
