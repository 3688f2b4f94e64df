import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

import { FlightError } from "../flight-error";
import type { FlightDescriptor } from "../flight-types";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import { computeBatchStats, type BatchStats } from "../ipc/batch-stats";
import type { SchemaInfo } from "../ipc/arrow-schema";
import { StatusCode } from "../status-code";
import { descriptorKey } from "./descriptor-key";
import { IndexedFlightStore } from "./flight-index";
import { DICTIONARY_STATS, BATCH_WITHOUT_STATS, recordBatchStats, schemaForStats } from "./message-stats";
import { MAX_TIMER_MS, checkBoolean, checkEnum, checkFunction, checkNumber, checkNumberIn, checkOptions, checkString } from "../option-checks";
import {
  EOS,
  MANIFEST_FORMAT,
  STATS_FORMAT,
  appMetadataOf,
  decodeStats,
  crc32,
  descriptorOf,
  encodeManifest,
  fileId,
  frameLength,
  framePieces,
  infoOf,
  manifestDescriptor,
  manifestMessage,
  messageChecksum,
  paddedLength,
  type Manifest,
  type ManifestMessage,
} from "./disk-format";
import { lockDirectory } from "./disk-lock";
import { recoverDirectory, storePaths, type RecoveryReport } from "./disk-recovery";
import type {
  FlightStore,
  GcReport,
  PutOptions,
  PutTransaction,
  StoreDiskStats,
  StoreGc,
  StoreGcStats,
  StoreStats,
  StoreTtl,
  StoreTtlStats,
  StoredFlight,
  MessageStats,
} from "./flight-store";
import { DEFAULT_GC_INTERVAL_MS, MAX_TTL_MS, structuralSchemasEqual, type SchemaComparator } from "./memory-store";
import type { MessageReadOptions, ReadLease } from "./read-lease";

/**
 * When a DiskStore forces written bytes to the disk (fsync):
 *
 * - `"always"` (default): before a put's commit resolves, its data file, its manifest and the
 *   directory entries are fsynced. An acknowledged put survives a crash of the process, of
 *   the OS and a power loss. Costs one to three fsyncs per put.
 * - `"interval"`: commits only write; a timer fsyncs what changed every `fsyncIntervalMs`
 *   (default 1 s). A process crash loses nothing acknowledged (the OS holds the bytes); an OS
 *   crash or power loss can lose the puts of the last interval, and a flight whose manifest
 *   reached the disk before its data fails its checksums on read (DATA_LOSS) instead of
 *   serving wrong bytes.
 * - `"never"`: the OS writes back when it likes (on Linux, typically within 30 s). Safe
 *   against a process crash; an OS crash or power loss can lose any recent put.
 *
 * In every mode a commit is atomic: after any crash a put is there whole or not at all.
 */
export type FsyncPolicy = "always" | "interval" | "never";

/** Options of {@link DiskStore}. Every option is validated by the constructor. */
export interface DiskStoreOptions {
  /** The store's directory; created if missing. One store (one process) uses it at a time. */
  dir: string;
  /** See {@link FsyncPolicy}. Default `"always"`. */
  fsync?: FsyncPolicy;
  /** Interval of the `"interval"` policy's fsyncs, ms. Default 1000. */
  fsyncIntervalMs?: number;
  /** Limit of data and manifest bytes on disk, plus bytes reserved by open puts. Default: none. */
  maxDiskBytes?: number;
  /** TTL of a flight put without its own, ms; 0 = never expire. Default 0. */
  defaultTtlMs?: number;
  /** Interval of background GC, ms. Default 30 000. */
  gcIntervalMs?: number;
  /** Whether to collect expired flights in the background. Default true. */
  enableGC?: boolean;
  /** Clock in epoch ms, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Receives damaged flights, recovery findings and errors of background work. Default: a process warning. */
  onError?: (err: unknown) => void;
  /** Schema comparison for appends. Default `structuralSchemasEqual`. */
  schemasEqual?: SchemaComparator;
}

/** What {@link DiskStore.stats} reports: every section it offers is present. */
export interface DiskStoreStats extends StoreStats {
  ttl: StoreTtlStats;
  gc: StoreGcStats;
  disk: StoreDiskStats;
}

/** Default of {@link DiskStoreOptions.fsyncIntervalMs}. */
export const DEFAULT_FSYNC_INTERVAL_MS = 1_000;
/**
 * A read from a data file covers consecutive messages up to this many bytes (one message may
 * be larger). A reader holds at most two such spans (see DiskFlight.read). 4 MiB: fewer reads,
 * buffers and awaits per byte than 1 MiB (docs/storage.md, "Performance").
 */
const READ_BYTES = 4 << 20;
/** Chunk of the copy an append makes from its temp file into the flight's data file. */
const COPY_BYTES = 1 << 20;
/** Bytes counted per message read from disk besides its buffer (objects), as MemoryStore counts. */
const MESSAGE_OVERHEAD_BYTES = 64;
const FSYNC_POLICIES: readonly FsyncPolicy[] = ["always", "interval", "never"];
const EMPTY = new Uint8Array(0);
const KNOWN_OPTIONS = ["dir", "fsync", "fsyncIntervalMs", "maxDiskBytes", "defaultTtlMs", "gcIntervalMs", "enableGC", "now", "onError", "schemasEqual"] as const;

/**
 * Decoded statistics of manifest entries, by entry: entries are shared by the snapshots of a
 * flight (an append keeps the old ones), so each is decoded once, when a query first asks.
 */
const decodedStats = new WeakMap<ManifestMessage, MessageStats>();

function messageStatsOf(e: ManifestMessage, statsReadable: boolean): MessageStats {
  if (e.k !== MessageKind.RECORD_BATCH) return DICTIONARY_STATS;
  if (!statsReadable || e.s === undefined) return BATCH_WITHOUT_STATS;
  let m = decodedStats.get(e);
  if (m === undefined) {
    m = recordBatchStats(decodeStats(e.s));
    decodedStats.set(e, m);
  }
  return m;
}

/** A snapshot of one flight on disk; its messages are read from the data file when iterated. */
class DiskFlight implements StoredFlight {
  readonly key: string;
  readonly descriptor: FlightDescriptor;
  readonly schema: StoredMessage;
  readonly messageCount: number;
  readonly totalRecords: number;
  readonly totalBytes: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | undefined;

  constructor(
    manifest: Manifest,
    descriptor: FlightDescriptor,
    schema: StoredMessage,
    /** The manifest's messages as of this snapshot (schema first); frozen. */
    private readonly entries: readonly ManifestMessage[],
    private readonly dataPath: string,
    private readonly onDamage: (err: FlightError, detail: string) => void,
    /** Whether the manifest's `s` entries are of a {@link STATS_FORMAT} this code reads. */
    private readonly statsReadable: boolean,
  ) {
    this.key = manifest.key;
    this.descriptor = descriptor;
    this.schema = schema;
    this.messageCount = entries.length - 1;
    this.totalRecords = manifest.totalRecords;
    this.totalBytes = manifest.totalBytes;
    this.createdAt = manifest.createdAt;
    this.updatedAt = manifest.updatedAt;
    this.expiresAt = manifest.expiresAt ?? undefined;
    Object.freeze(this);
  }

  /**
   * Streams the messages from disk, each checked against its checksum before it is served. The
   * store holds at most two spans of {@link READ_BYTES} (or one message, when larger): the one
   * being served and the next, read ahead while it is.
   */
  messages(options?: MessageReadOptions): AsyncIterable<StoredMessage> {
    const lease = options?.lease;
    const only = options?.only;
    // With `only`, the pass reads the schema's entry and the chosen ones: spans still join
    // messages that are next to each other in the file, and skip the others unread.
    const entries = only === undefined ? this.entries : [this.entries[0]!, ...only.map((i) => this.entries[i + 1]).filter((e) => e !== undefined)];
    return { [Symbol.asyncIterator]: () => this.read(entries, lease === undefined ? undefined : new SpanBuffers(lease)) };
  }

  /** Each message's kind and statistics, from the manifest (computed at put; decoded on first use). */
  async batchStats(): Promise<readonly MessageStats[]> {
    const out = new Array<MessageStats>(this.entries.length - 1);
    for (let i = 1; i < this.entries.length; i++) out[i - 1] = messageStatsOf(this.entries[i]!, this.statsReadable);
    return out;
  }

  /** One pass over `entries` (schema first); with `buffers`, span buffers are reused as the lease releases them. */
  private async *read(entries: readonly ManifestMessage[], buffers: SpanBuffers | undefined): AsyncGenerator<StoredMessage> {
    if (entries.length <= 1) return;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.dataPath, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new FlightError(StatusCode.NOT_FOUND, `flight ${this.key} was removed before it could be read`);
      }
      throw this.readFailure(err);
    }
    let next: Promise<Span> | undefined = readAhead(fh, entries, 1, buffers);
    try {
      while (next !== undefined) {
        let span: Span;
        try {
          span = await next;
        } catch (err) {
          next = undefined;
          throw this.readFailure(err);
        }
        // Read the next span while this one is checked and served: the disk (or page cache)
        // copy runs on the thread pool, the checksums and the serving on the event loop.
        next = span.end < entries.length ? readAhead(fh, entries, span.end, buffers) : undefined;
        // Check the whole span in one pass, with no await in between; the good messages
        // before a bad one are still served, then DATA_LOSS.
        const out: StoredMessage[] = [];
        let failure: FlightError | undefined;
        for (let k = span.first; k < span.end; k++) {
          const e = entries[k]!;
          const off = e.o - span.position;
          const len = frameLength(e.h, e.b);
          if (off + len > span.got) {
            failure = this.damaged(k, `the data file ends at byte ${span.position + span.got}, message ${k} needs bytes up to ${e.o + len}`);
            break;
          }
          const frame = span.buf.subarray(off, off + len);
          const meta = appMetadataOf(e);
          if (crc32(meta, crc32(frame)) !== e.c) {
            failure = this.damaged(k, `message ${k} at byte ${e.o} fails its checksum`);
            break;
          }
          const pad = paddedLength(e.h);
          out.push({
            header: frame.subarray(8, 8 + e.h),
            body: frame.subarray(8 + pad, len),
            appMetadata: meta,
            info: infoOf(e),
            byteSize: len + meta.byteLength + MESSAGE_OVERHEAD_BYTES,
          });
        }
        // Views into the span's buffer: a message served keeps only its span alive.
        yield* out;
        if (failure !== undefined) throw failure;
      }
    } finally {
      // A read still in flight must finish before its file is closed (early return or error).
      if (next !== undefined) await next.catch(() => undefined);
      await fh.close();
    }
  }

  /**
   * A failed open or read of the data file as a FlightError: a media error (EIO) is DATA_LOSS
   * and is reported as damage; running out of file handles or memory is RESOURCE_EXHAUSTED;
   * anything else UNAVAILABLE (the disk, a dependency, is failing).
   */
  private readFailure(err: unknown): FlightError {
    if (err instanceof FlightError) return err;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === "EIO") {
      const e = new FlightError(StatusCode.DATA_LOSS, `flight ${this.key} could not be read from disk (EIO); nothing more of it is served`, { cause: err });
      this.onDamage(e, `${this.dataPath}: ${(err as Error).message}`);
      return e;
    }
    if (code === "EMFILE" || code === "ENFILE" || code === "ENOMEM") {
      return new FlightError(StatusCode.RESOURCE_EXHAUSTED, `cannot read flight ${this.key}: ${code}`, { cause: err });
    }
    return new FlightError(StatusCode.UNAVAILABLE, `cannot read flight ${this.key} from disk${code ? ` (${code})` : ""}`, { cause: err });
  }

  private damaged(index: number, detail: string): FlightError {
    const err = new FlightError(
      StatusCode.DATA_LOSS,
      `flight ${this.key} is damaged on disk (message ${index} of ${this.messageCount}); nothing more of it is served`,
    );
    this.onDamage(err, `${this.dataPath}: ${detail}`);
    return err;
  }
}

/** The store's record of one flight; readers only ever see `snapshot`. */
interface DiskRecord {
  readonly key: string;
  /** File name stem: from the key, so the same descriptor always maps to the same manifest. */
  readonly id: string;
  manifest: Manifest;
  manifestBytes: number;
  readonly descriptor: FlightDescriptor;
  readonly schema: StoredMessage;
  snapshot: DiskFlight;
}

type PutState = "open" | "committing" | "failed" | "committed" | "aborted";

/**
 * A {@link FlightStore} on disk that loses nothing acknowledged: each flight is an Arrow IPC
 * stream file (readable as it is with `pyarrow.ipc.open_stream`) and a small JSON manifest
 * beside it (descriptor, absolute expiry, per-message offsets, app_metadata and CRC-32
 * checksums). See docs/storage.md for the format.
 *
 * - Puts are transactions: messages go to a temp file as they arrive (reserving against
 *   `maxDiskBytes` first), and a commit makes the put visible atomically by renaming a new
 *   manifest into place; an append copies the put's messages after the flight's committed
 *   end and commits the same way. After a crash a put is there whole or not at all.
 * - Durability follows the {@link FsyncPolicy} (`"always"` by default).
 * - Opening recovers: leftovers of uncommitted puts are removed, interrupted appends cut
 *   back, expired flights collected, and the index rebuilt from the manifests.
 * - Reads stream from disk up to 4 MiB at a time, one span read ahead, and check every
 *   message's checksum before it is served; a damaged flight ends its DoGet with DATA_LOSS
 *   and is reported to `onError`.
 * - A lock file keeps a second process (or store) out of the directory.
 *
 * It offers the TTL ({@link StoreTtl}) and GC ({@link StoreGc}) capabilities, not the memory
 * limit: what it holds in memory does not grow with the bytes it stores.
 *
 * @example
 * const store = diskStore({ dir: "/var/lib/blackice", fsync: "always", maxDiskBytes: 100 * 2 ** 30 });
 * const server = createFlightServer(withStore(store), serverConfig({ ttl: 3_600_000 }));
 * await server.start();
 * // on shutdown
 * await server.shutdown();
 * await store.close();
 */
export class DiskStore extends IndexedFlightStore<DiskRecord> implements FlightStore, StoreTtl, StoreGc {
  /** What the last open found and repaired. */
  readonly recovery: RecoveryReport;
  private readonly dir: string;
  private readonly paths: ReturnType<typeof storePaths>;
  private readonly fsyncPolicy: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly maxDiskBytes: number | undefined;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private readonly schemasEqual: SchemaComparator;
  private readonly releaseLock: () => void;

  private defaultTtlMs: number;
  private gcIntervalMs: number;
  private enableGC: boolean;

  private totalRows = 0;
  private totalBytes = 0;
  private usedBytes = 0;
  private reservedBytes = 0;
  private gcRuns = 0;
  private gcFlightsRemoved = 0;
  private gcBytesFreed = 0;

  /** Mutations of the directory run one after another through this chain. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Files and directories written since the last `"interval"` fsync. */
  private dirty = new Set<string>();
  private gcTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private gcRunning = false;
  /** Aborts of the puts still open, run by close() (their temp files would outlive the lock). */
  private readonly openPuts = new Set<() => Promise<void>>();
  private closed = false;
  private closing: Promise<void> | undefined;

  /**
   * Opens (and recovers) the store in `options.dir`. Synchronous, so a server can be built
   * with it in one expression; it reads each manifest once.
   *
   * @throws TypeError naming an invalid option and its valid range.
   * @throws FlightError FAILED_PRECONDITION when the directory is locked by another process
   * or store, PERMISSION_DENIED when it cannot be created or written.
   */
  constructor(options: DiskStoreOptions) {
    super();
    const where = "DiskStore";
    checkOptions(where, options, KNOWN_OPTIONS, true);
    checkString(where, "dir", options.dir, "a non-empty path", true);
    this.fsyncPolicy = checkEnum(where, "fsync", options.fsync, FSYNC_POLICIES, "always");
    this.fsyncIntervalMs = checkNumber(where, "fsyncIntervalMs", options.fsyncIntervalMs, 1, MAX_TIMER_MS, DEFAULT_FSYNC_INTERVAL_MS);
    this.maxDiskBytes = options.maxDiskBytes === undefined ? undefined : checkNumber(where, "maxDiskBytes", options.maxDiskBytes, 1, Number.MAX_SAFE_INTEGER);
    this.defaultTtlMs = checkNumber(where, "defaultTtlMs", options.defaultTtlMs, 0, MAX_TTL_MS, 0);
    this.gcIntervalMs = checkNumber(where, "gcIntervalMs", options.gcIntervalMs, 1, MAX_TIMER_MS, DEFAULT_GC_INTERVAL_MS);
    this.enableGC = checkBoolean(where, "enableGC", options.enableGC, true);
    for (const name of ["now", "onError", "schemasEqual"] as const) checkFunction(where, name, options[name]);
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? ((err: unknown) => process.emitWarning(`DiskStore: ${err instanceof Error ? err.message : String(err)}`));
    this.schemasEqual = options.schemasEqual ?? structuralSchemasEqual;
    this.dir = path.resolve(options.dir);
    this.paths = storePaths(this.dir);

    try {
      fs.mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new FlightError(StatusCode.PERMISSION_DENIED, `cannot create data directory ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.releaseLock = lockDirectory(this.dir);
    try {
      const { flights, report } = recoverDirectory(this.dir, this.now(), (problem) => this.report(new FlightError(StatusCode.DATA_LOSS, problem)), this.fsyncPolicy !== "never");
      this.recovery = report;
      for (const { manifest, manifestBytes } of flights) this.install(manifest, manifestBytes, storedSchema(manifest));
    } catch (err) {
      this.releaseLock();
      if (err instanceof FlightError) throw err;
      throw new FlightError(StatusCode.FAILED_PRECONDITION, `cannot open data directory ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.startGcTimer();
    if (this.fsyncPolicy === "interval") {
      this.syncTimer = setInterval(() => void this.flushDirty(), this.fsyncIntervalMs);
      this.syncTimer.unref();
    }
  }

  // ---------------------------------------------------------------- puts

  /**
   * Opens a put under `descriptor`: creates its temp file and writes the schema. If a flight
   * exists there, the put appends to it on commit; its schema must equal the stored one
   * (checked now and again at commit).
   *
   * @throws FlightError INVALID_ARGUMENT (bad descriptor, schema, ttl, or schema mismatch),
   * RESOURCE_EXHAUSTED (disk limit or disk full), FAILED_PRECONDITION (store closed).
   */
  async beginPut(descriptor: FlightDescriptor, schema: StoredMessage, options?: PutOptions): Promise<PutTransaction> {
    this.ensureOpen();
    const key = descriptorKey(descriptor);
    checkMessage(schema, "the schema");
    if (schema.info.kind !== MessageKind.SCHEMA) throw invalid(`a put must start with a schema message, got message kind ${schema.info.kind}`);
    if (schema.body.byteLength !== 0) throw invalid("a schema message has no body");
    const ttlMs = options?.ttlMs === undefined ? undefined : checkNumberOr(invalid, "beginPut", "ttlMs", options.ttlMs, 0, MAX_TTL_MS);
    const replace = options?.replace === true;
    const existing = replace ? undefined : this.liveRecord(key, this.now());
    if (existing !== undefined) this.checkSchema(existing, schema);
    return this.openPut(key, descriptor, schema, ttlMs, replace);
  }

  private async openPut(key: string, descriptor: FlightDescriptor, schema: StoredMessage, ttlMs: number | undefined, replace: boolean): Promise<PutTransaction> {
    const normalized = descriptorOf(manifestDescriptor(descriptor));
    const tmpPath = path.join(this.paths.tmp, `${randomHex(12)}.part`);
    const entries: ManifestMessage[] = [];
    let length = 0;
    let reserved = 0;
    let statsSchema: SchemaInfo | null | undefined;
    let state: PutState = "open";
    let failure = "";
    let fh: fsp.FileHandle | undefined;

    const cleanup = async (): Promise<void> => {
      this.openPuts.delete(abortOnClose);
      this.reservedBytes -= reserved;
      reserved = 0;
      const h = fh;
      fh = undefined;
      await h?.close().catch(() => undefined);
      await fsp.rm(tmpPath, { force: true }).catch(() => undefined);
    };
    const fail = async (err: unknown): Promise<FlightError> => {
      // A put that lost a message must never commit: the flight would silently miss data.
      state = "failed";
      const e = ioError(err, "store the put");
      failure = e.message;
      await cleanup();
      return e;
    };
    const ensurePutOpen = (): void => {
      if (state === "open") return;
      const why =
        state === "committed"
          ? "this put was already committed; begin a new put to add more"
          : state === "aborted"
            ? "this put was aborted"
            : state === "committing"
              ? "this put is being committed"
              : `this put failed earlier (${failure}) and can only be aborted`;
      throw new FlightError(StatusCode.FAILED_PRECONDITION, why);
    };
    const write = async (message: StoredMessage): Promise<void> => {
      const pieces = framePieces(message);
      const n = frameLength(message.header.byteLength, message.body.byteLength);
      await this.reserve(n);
      reserved += n;
      const c = messageChecksum(pieces, message.appMetadata);
      // Statistics of a record batch, once, at put, from the bytes written (docs/storage.md).
      let stats: BatchStats | undefined;
      if (message.info.kind === MessageKind.RECORD_BATCH) {
        statsSchema ??= schemaForStats(schema);
        if (statsSchema !== null) stats = computeBatchStats(statsSchema, message.header, message.body);
      }
      await writeAll(fh!, pieces, length);
      entries.push(manifestMessage(message, length, c, stats));
      length += n;
    };

    const abortOnClose = async (): Promise<void> => {
      if (state !== "open") return;
      state = "aborted";
      await cleanup();
    };
    this.openPuts.add(abortOnClose);
    try {
      fh = await fsp.open(tmpPath, "wx+");
      await write(schema);
    } catch (err) {
      throw await fail(err);
    }

    return {
      append: async (message: StoredMessage): Promise<void> => {
        ensurePutOpen();
        try {
          checkMessage(message, `message ${entries.length - 1}`);
          if (message.info.kind === MessageKind.SCHEMA) throw invalid("a schema message cannot be appended: a put has exactly one schema, given when it begins");
          await write(message);
        } catch (err) {
          throw await fail(err);
        }
      },

      commit: async (): Promise<StoredFlight> => {
        ensurePutOpen();
        state = "committing";
        try {
          const handle = fh!;
          fh = undefined;
          const flight = await this.serialize(() => this.commitPut(key, normalized, schema, entries, length, handle, tmpPath, ttlMs, replace));
          this.reservedBytes -= reserved;
          reserved = 0;
          state = "committed";
          return flight;
        } catch (err) {
          throw await fail(err);
        }
      },

      abort: async (): Promise<void> => {
        if (state !== "open") return;
        state = "aborted";
        await cleanup();
      },
    };
  }

  /** Runs inside {@link serialize}: no other change to the directory interleaves. */
  private async commitPut(
    key: string,
    descriptor: FlightDescriptor,
    schema: StoredMessage,
    entries: ManifestMessage[],
    length: number,
    tmp: fsp.FileHandle,
    tmpPath: string,
    ttlMs: number | undefined,
    replace: boolean,
  ): Promise<StoredFlight> {
    try {
      this.ensureOpen();
      const now = this.now();
      // A replacing put commits as a new flight: commitNew's manifest write replaces the live one's.
      const existing = replace ? undefined : this.liveRecord(key, now);
      // Re-checked here: another put may have created the flight since beginPut.
      if (existing !== undefined) this.checkSchema(existing, schema);
      const schemaHeader = schema.header;
      let rows = 0;
      let bytes = 0;
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.k === MessageKind.RECORD_BATCH) rows += entries[i]!.r;
        bytes += entries[i]!.h + entries[i]!.b;
      }
      return existing === undefined
        ? await this.commitNew(key, descriptor, entries, length, tmp, tmpPath, ttlMs, now, schemaHeader, rows, bytes)
        : await this.commitAppend(existing, entries, length, tmp, ttlMs, now, rows, bytes);
    } finally {
      await tmp.close().catch(() => undefined);
      await fsp.rm(tmpPath, { force: true }).catch(() => undefined);
    }
  }

  private async commitNew(
    key: string,
    descriptor: FlightDescriptor,
    entries: ManifestMessage[],
    length: number,
    tmp: fsp.FileHandle,
    tmpPath: string,
    ttlMs: number | undefined,
    now: number,
    schemaHeader: Uint8Array,
    rows: number,
    bytes: number,
  ): Promise<StoredFlight> {
    const id = fileId(key);
    await writeAll(tmp, [EOS], length);
    if (this.fsyncPolicy === "always") await tmp.datasync();
    const dataName = `${id}.${randomHex(6)}.arrows`;
    const dataPath = path.join(this.paths.flights, dataName);
    await fsp.rename(tmpPath, dataPath);
    // The data file's name is durable before a manifest can name it.
    if (this.fsyncPolicy === "always") await syncPath(this.paths.flights);
    this.touched(dataPath);
    const effectiveTtl = ttlMs ?? this.defaultTtlMs;
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      key,
      descriptor: manifestDescriptor(descriptor),
      data: dataName,
      dataLength: length + EOS.length,
      createdAt: now,
      updatedAt: now,
      expiresAt: effectiveTtl === 0 ? null : now + effectiveTtl,
      ttlMs: ttlMs ?? null,
      totalRecords: rows,
      totalBytes: bytes + entries[0]!.h,
      schema: Buffer.from(schemaHeader).toString("base64"),
      messages: entries,
      statsVersion: STATS_FORMAT,
    };
    let manifestBytes: number;
    try {
      manifestBytes = await this.writeManifest(id, manifest);
    } catch (err) {
      await fsp.rm(dataPath, { force: true }).catch(() => undefined);
      throw err;
    }
    // An expired flight not yet collected was replaced by the rename: drop its data file.
    const stale = this.flights.get(key);
    if (stale !== undefined) {
      this.forget(stale);
      await fsp.rm(path.join(this.paths.flights, stale.manifest.data), { force: true }).catch((err) => this.report(err));
    }
    return this.install(manifest, manifestBytes, storedSchema(manifest)).snapshot;
  }

  private async commitAppend(
    record: DiskRecord,
    entries: ManifestMessage[],
    length: number,
    tmp: fsp.FileHandle,
    ttlMs: number | undefined,
    now: number,
    rows: number,
    bytes: number,
  ): Promise<StoredFlight> {
    const old = record.manifest;
    const dataPath = path.join(this.paths.flights, old.data);
    const skip = frameLength(entries[0]!.h, entries[0]!.b);
    // The new messages go where the end-of-stream marker is; the manifest commits them.
    const at = old.dataLength - EOS.length;
    const added = length - skip;
    const data = await fsp.open(dataPath, "r+");
    try {
      const buf = Buffer.allocUnsafe(Math.min(COPY_BYTES, Math.max(added, 1)));
      for (let done = 0; done < added; ) {
        const n = Math.min(buf.length, added - done);
        const chunk = await readRange(tmp, skip + done, n, buf);
        await writeAll(data, [chunk], at + done);
        done += n;
      }
      await writeAll(data, [EOS], at + added);
      if (this.fsyncPolicy === "always") await data.datasync();
    } catch (err) {
      // Put the committed end back, so the file stays a valid stream for readers outside.
      await data.truncate(old.dataLength).catch(() => undefined);
      await writeAll(data, [EOS], at).catch(() => undefined);
      await data.close();
      throw err;
    }
    await data.close();
    this.touched(dataPath);
    let expiresAt = old.expiresAt;
    let ownTtl = old.ttlMs;
    if (ttlMs !== undefined) {
      ownTtl = ttlMs;
      expiresAt = ttlMs === 0 ? null : now + ttlMs;
    }
    const manifest: Manifest = {
      ...old,
      dataLength: at + added + EOS.length,
      updatedAt: now,
      expiresAt,
      ttlMs: ownTtl,
      totalRecords: old.totalRecords + rows,
      totalBytes: old.totalBytes + bytes,
      messages: old.messages.concat(entries.slice(1).map((e) => ({ ...e, o: e.o - skip + at }))),
    };
    if (old.statsVersion !== STATS_FORMAT) {
      // Written before statistics (or with another version): the old batches' `s`, if any,
      // cannot be read as this version, and are dropped; the new batches keep theirs.
      const kept = new Set(old.messages);
      manifest.messages = manifest.messages.map((e) => (kept.has(e) && e.s !== undefined ? withoutStats(e) : e));
      manifest.statsVersion = STATS_FORMAT;
    }
    let manifestBytes: number;
    try {
      manifestBytes = await this.writeManifest(record.id, manifest);
    } catch (err) {
      const fh = await fsp.open(dataPath, "r+");
      await fh.truncate(old.dataLength).catch(() => undefined);
      await writeAll(fh, [EOS], at).catch(() => undefined);
      await fh.close();
      throw err;
    }
    this.forget(record, true);
    return this.install(manifest, manifestBytes, record.schema).snapshot;
  }

  /**
   * Writes a manifest to a temp file and renames it over `<id>.json`: the commit point of
   * every change. Under `"always"` the file and the directory are fsynced before it returns.
   * Returns the manifest's size.
   */
  private async writeManifest(id: string, manifest: Manifest): Promise<number> {
    const bytes = encodeManifest(manifest);
    const final = path.join(this.paths.flights, `${id}.json`);
    const tmp = `${final}.tmp-${randomHex(6)}`;
    const fh = await fsp.open(tmp, "wx");
    try {
      await writeAll(fh, [bytes], 0);
      if (this.fsyncPolicy === "always") await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await fsp.rename(tmp, final);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    if (this.fsyncPolicy === "always") await syncPath(this.paths.flights);
    else this.touched(final);
    return bytes.length;
  }

  private checkSchema(record: DiskRecord, schema: StoredMessage): void {
    const diff = this.schemasEqual(record.schema, schema);
    if (diff !== undefined) throw invalid(`cannot append to flight ${record.key}: ${diff}`);
  }

  /** Reserves `n` bytes against `maxDiskBytes`, collecting expired flights first if that makes room. */
  private async reserve(n: number): Promise<void> {
    const max = this.maxDiskBytes;
    if (max !== undefined && this.usedBytes + this.reservedBytes + n > max) {
      // Expired flights still take disk space until GC runs; freeing them beats refusing a put.
      if (this.hasExpired()) await this.gc();
      if (this.usedBytes + this.reservedBytes + n > max) {
        throw new FlightError(
          StatusCode.RESOURCE_EXHAUSTED,
          `disk limit of ${max} bytes reached: ${this.usedBytes} bytes stored, ${this.reservedBytes} reserved by open puts, ${n} more requested`,
        );
      }
    }
    this.reservedBytes += n;
  }

  // ---------------------------------------------------------------- reads

  // get, getByTicket, ticketFor and list: IndexedFlightStore (flight-index.ts).

  protected currentTime(): number {
    return this.now();
  }

  // ---------------------------------------------------------------- admin

  /** Removes a flight (its manifest first: the commit point); false if there was none. */
  async delete(descriptor: FlightDescriptor): Promise<boolean> {
    this.ensureOpen();
    const key = descriptorKey(descriptor);
    return this.serialize(async () => {
      const record = this.flights.get(key);
      if (record === undefined) return false;
      const wasLive = this.liveRecord(key, this.now()) !== undefined;
      await this.remove(record);
      return wasLive;
    });
  }

  /**
   * Sets a live flight's expiry to now + ttl (`ttlMs`, else the flight's own TTL, else the
   * default; 0: never), durably. Returns the renewed snapshot, or undefined.
   *
   * @throws FlightError INVALID_ARGUMENT for a bad descriptor or ttl.
   */
  async renew(descriptor: FlightDescriptor, ttlMs?: number): Promise<StoredFlight | undefined> {
    this.ensureOpen();
    const key = descriptorKey(descriptor);
    if (ttlMs !== undefined) checkNumberOr(invalid, "renew", "ttlMs", ttlMs, 0, MAX_TTL_MS);
    return this.serialize(async () => {
      const now = this.now();
      const record = this.liveRecord(key, now);
      if (record === undefined) return undefined;
      const ttl = ttlMs ?? record.manifest.ttlMs ?? this.defaultTtlMs;
      const manifest: Manifest = { ...record.manifest, expiresAt: ttl === 0 ? null : now + ttl };
      const manifestBytes = await this.writeManifest(record.id, manifest);
      this.forget(record, true);
      return this.install(manifest, manifestBytes, record.schema).snapshot;
    });
  }

  /** Sets the TTL of later puts (and of renews of flights without their own TTL). Existing expiries stay. */
  setDefaultTtl(ms: number): void {
    this.defaultTtlMs = checkNumber("DiskStore.setDefaultTtl", "defaultTtlMs", ms, 0, MAX_TTL_MS);
  }

  /** Turns background GC on or off. */
  setGcEnabled(enabled: boolean): void {
    checkBoolean("DiskStore.setGcEnabled", "enabled", enabled);
    this.enableGC = enabled;
    if (enabled) this.startGcTimer();
    else this.stopGcTimer();
  }

  /** Sets the background GC interval and restarts its timer. */
  setGcInterval(ms: number): void {
    this.gcIntervalMs = checkNumber("DiskStore.setGcInterval", "gcIntervalMs", ms, 1, MAX_TIMER_MS);
    this.stopGcTimer();
    this.startGcTimer();
  }

  /** Store-wide figures. Expired flights not yet collected still count: they still take disk space. */
  stats(): DiskStoreStats {
    return {
      flights: this.flights.size,
      rows: this.totalRows,
      bytes: this.totalBytes,
      ttl: { defaultTtlMs: this.defaultTtlMs },
      gc: { gcEnabled: this.enableGC, gcIntervalMs: this.gcIntervalMs, gcRuns: this.gcRuns, gcFlightsRemoved: this.gcFlightsRemoved, gcBytesFreed: this.gcBytesFreed },
      disk: { dir: this.dir, fsync: this.fsyncPolicy, usedBytes: this.usedBytes, reservedBytes: this.reservedBytes, maxDiskBytes: this.maxDiskBytes },
    };
  }

  /**
   * Removes expired flights now, one at a time between other changes, so puts are not held
   * up by a large collection. Cost grows with the number of flights (a scan of the index).
   */
  async gc(): Promise<GcReport> {
    const started = performance.now();
    let flightsRemoved = 0;
    let bytesFreed = 0;
    const now = this.now();
    const due: DiskRecord[] = [];
    for (const r of this.flights.values()) if (r.manifest.expiresAt !== null && r.manifest.expiresAt <= now) due.push(r);
    for (const r of due) {
      if (this.closed) break;
      await this.serialize(async () => {
        // Still the same record and still expired (a renew or a new put may have come first),
        // and the directory still ours.
        if (this.closed || this.flights.get(r.key) !== r) return;
        const freed = r.manifest.dataLength + r.manifestBytes;
        await this.remove(r);
        flightsRemoved++;
        bytesFreed += freed;
      });
    }
    this.gcRuns++;
    this.gcFlightsRemoved += flightsRemoved;
    this.gcBytesFreed += bytesFreed;
    return { flightsRemoved, bytesFreed, durationMs: performance.now() - started };
  }

  /**
   * Waits for changes in progress, aborts puts still open, fsyncs what the `"interval"` policy has not yet, stops the
   * timers and releases the directory's lock. Later changes are refused; reads of flights
   * already found still work until their files are changed by another process.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.stopGcTimer();
      if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
      await this.tail;
      await Promise.all([...this.openPuts].map((abort) => abort()));
      await this.flushDirty();
      this.releaseLock();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- internals

  /** Adds a flight to the index and the figures. */
  private install(manifest: Manifest, manifestBytes: number, schema: StoredMessage): DiskRecord {
    const descriptor = descriptorOf(manifest.descriptor);
    const dataPath = path.join(this.paths.flights, manifest.data);
    const record: DiskRecord = {
      key: manifest.key,
      id: fileId(manifest.key),
      manifest,
      manifestBytes,
      descriptor,
      schema,
      snapshot: new DiskFlight(
        manifest,
        descriptor,
        schema,
        Object.freeze(manifest.messages),
        dataPath,
        (err, detail) => this.report(new FlightError(err.code, `${err.message}: ${detail}`)),
        manifest.statsVersion === STATS_FORMAT,
      ),
    };
    this.flights.set(record.key, record);
    this.totalRows += manifest.totalRecords;
    this.totalBytes += manifest.totalBytes;
    this.usedBytes += manifest.dataLength + manifestBytes;
    return record;
  }

  /**
   * Takes a flight out of the figures, and out of the index unless `replaced` (then
   * {@link install} puts its successor in the same place, so listing order stays creation order).
   */
  private forget(record: DiskRecord, replaced = false): void {
    if (!replaced && this.flights.get(record.key) === record) this.flights.delete(record.key);
    this.totalRows -= record.manifest.totalRecords;
    this.totalBytes -= record.manifest.totalBytes;
    this.usedBytes -= record.manifest.dataLength + record.manifestBytes;
  }

  /** Removes a flight's files, manifest first: once it is gone the flight is gone, whatever follows. */
  private async remove(record: DiskRecord): Promise<void> {
    const manifestPath = path.join(this.paths.flights, `${record.id}.json`);
    await fsp.rm(manifestPath, { force: true });
    if (this.fsyncPolicy === "always") await syncPath(this.paths.flights);
    else this.touched(this.paths.flights);
    this.forget(record);
    // A running DoGet keeps its open file; the space returns when it finishes.
    await fsp.rm(path.join(this.paths.flights, record.manifest.data), { force: true }).catch((err) => this.report(err));
  }

  private hasExpired(): boolean {
    const now = this.now();
    for (const r of this.flights.values()) if (r.manifest.expiresAt !== null && r.manifest.expiresAt <= now) return true;
    return false;
  }

  /** Runs directory changes one after another. */
  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Notes a path for the next `"interval"` fsync (with its directory). */
  private touched(file: string): void {
    if (this.fsyncPolicy !== "interval") return;
    this.dirty.add(file);
    this.dirty.add(this.paths.flights);
  }

  /** The `"interval"` policy's fsync: files first, then the directory that names them. */
  private async flushDirty(): Promise<void> {
    if (this.dirty.size === 0) return;
    const list = [...this.dirty].sort((a, b) => (a === this.paths.flights ? 1 : b === this.paths.flights ? -1 : 0));
    this.dirty = new Set();
    for (const p of list) {
      try {
        await syncPath(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.report(err);
      }
    }
  }

  private startGcTimer(): void {
    if (!this.enableGC || this.closed || this.gcTimer !== undefined) return;
    this.gcTimer = setInterval(() => {
      if (this.gcRunning) return;
      this.gcRunning = true;
      this.gc()
        .catch((err) => this.report(err))
        .finally(() => (this.gcRunning = false));
    }, this.gcIntervalMs);
    // Background GC alone must not keep the process alive.
    this.gcTimer.unref();
  }

  private stopGcTimer(): void {
    if (this.gcTimer !== undefined) clearInterval(this.gcTimer);
    this.gcTimer = undefined;
  }

  private ensureOpen(): void {
    if (this.closed) throw new FlightError(StatusCode.FAILED_PRECONDITION, "the disk store is closed");
  }

  private report(err: unknown): void {
    try {
      this.onError(err);
    } catch {
      // An error handler that throws has nowhere left to report to.
    }
  }
}

/**
 * Opens a {@link DiskStore}: a durable store in `dir` (see {@link DiskStoreOptions}).
 *
 * @example
 * createFlightServer(withStore(diskStore({ dir: "./data", fsync: "always" })));
 */
export function diskStore(options: DiskStoreOptions): DiskStore {
  return new DiskStore(options);
}

// ---------------------------------------------------------------- helpers

/** The schema message of a flight, from its manifest (no data file read). */
function storedSchema(manifest: Manifest): StoredMessage {
  const header = new Uint8Array(Buffer.from(manifest.schema, "base64"));
  const e = manifest.messages[0]!;
  const appMetadata = appMetadataOf(e);
  return { header, body: EMPTY, appMetadata, info: infoOf(e), byteSize: header.byteLength + appMetadata.byteLength + MESSAGE_OVERHEAD_BYTES };
}

/** A manifest entry without its statistics. */
function withoutStats(e: ManifestMessage): ManifestMessage {
  const { s: _dropped, ...rest } = e;
  return rest;
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

/** fsyncs a file or a directory (a directory's fsync makes its entries durable). */
async function syncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `pieces` at `position`, vectored, continuing after short writes. */
async function writeAll(fh: fsp.FileHandle, pieces: readonly Uint8Array[], position: number): Promise<void> {
  let list = pieces.filter((p) => p.byteLength > 0);
  let pos = position;
  while (list.length > 0) {
    const { bytesWritten } = await fh.writev(list as Uint8Array[], pos);
    pos += bytesWritten;
    let n = bytesWritten;
    let i = 0;
    while (i < list.length && n >= list[i]!.byteLength) n -= list[i++]!.byteLength;
    list = list.slice(i);
    if (n > 0) list[0] = list[0]!.subarray(n);
  }
}

/** Bytes of a data file read at once: messages `first` to `end - 1`, from `position`; `got` bytes were there. */
/** Most free span buffers a pass keeps for reuse. */
const MAX_FREE_SPANS = 2;

/**
 * The span buffers of one pass whose reader holds a {@link ReadLease}: a buffer goes back to a
 * small free list once the reader has released every message read into it, and a later span
 * that fits is read into it instead of fresh memory (a fresh buffer costs page faults and,
 * every few tens of MiB, a V8 mark-compact for external memory). Buffers are at least
 * {@link READ_BYTES}; a span of one larger message gets one of its own size, reused by later
 * spans that fit. The free list keeps at most {@link MAX_FREE_SPANS} buffers, the largest.
 */
class SpanBuffers {
  private readonly free: Buffer[] = [];
  /** Buffers handed out, oldest first, with the release count that frees each. */
  private readonly lent: Array<{ readonly buf: Buffer; readonly until: number }> = [];

  constructor(lease: ReadLease) {
    lease.watch((released) => this.reclaim(released));
  }

  /** A buffer of `size` bytes for a span that is done with once `until` messages are released. */
  take(size: number, until: number): Buffer {
    const i = this.free.findIndex((b) => b.byteLength >= size);
    const buf = i >= 0 ? this.free.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.max(size, READ_BYTES));
    this.lent.push({ buf, until });
    return buf.subarray(0, size);
  }

  private reclaim(released: number): void {
    while (this.lent.length > 0 && this.lent[0]!.until <= released) {
      this.free.push(this.lent.shift()!.buf);
      if (this.free.length > MAX_FREE_SPANS) {
        this.free.sort((a, b) => b.byteLength - a.byteLength);
        this.free.length = MAX_FREE_SPANS;
      }
    }
  }
}

interface Span {
  readonly buf: Buffer;
  readonly position: number;
  readonly got: number;
  readonly first: number;
  readonly end: number;
}

/**
 * {@link readSpan}, marked handled at once: its error is thrown where it is awaited, and while
 * a slow consumer takes the span before it, a failed read must not count as an unhandled
 * rejection (which ends the process by default).
 */
function readAhead(fh: fsp.FileHandle, entries: readonly ManifestMessage[], first: number, buffers: SpanBuffers | undefined): Promise<Span> {
  const p = readSpan(fh, entries, first, buffers);
  p.catch(() => undefined);
  return p;
}

/**
 * Reads the consecutive messages from `entries[first]` on, up to {@link READ_BYTES} (at least
 * one message), into one new buffer. A short file is not an error here: the caller reports
 * the message that needs the missing bytes.
 */
async function readSpan(fh: fsp.FileHandle, entries: readonly ManifestMessage[], first: number, buffers: SpanBuffers | undefined): Promise<Span> {
  const position = entries[first]!.o;
  let stop = position + frameLength(entries[first]!.h, entries[first]!.b);
  let end = first + 1;
  // Consecutive on disk: an append writes right after the last message.
  while (end < entries.length && entries[end]!.o === stop && stop + frameLength(entries[end]!.h, entries[end]!.b) - position <= READ_BYTES) {
    stop += frameLength(entries[end]!.h, entries[end]!.b);
    end++;
  }
  // Entry k is message k of the pass (entry 0 is the schema): the span is done with once
  // the reader has released messages up to end - 1.
  const buf = buffers === undefined ? Buffer.allocUnsafe(stop - position) : buffers.take(stop - position, end - 1);
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return { buf, position, got, first, end };
}

/** Reads `length` bytes at `position` (into `into` when given). */
async function readRange(fh: fsp.FileHandle, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into === undefined ? Buffer.allocUnsafe(length) : into.subarray(0, length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new Error(`short read at byte ${position + got}`);
    got += bytesRead;
  }
  return buf;
}

/** A put's I/O failure as a FlightError: a full disk is RESOURCE_EXHAUSTED, as the limit is. */
function ioError(err: unknown, what: string): FlightError {
  if (err instanceof FlightError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return new FlightError(StatusCode.RESOURCE_EXHAUSTED, `cannot ${what}: the disk is full`, { cause: err });
  if (code === "EROFS" || code === "EACCES" || code === "EPERM") return new FlightError(StatusCode.UNAVAILABLE, `cannot ${what}: the data directory is not writable (${code})`, { cause: err });
  return new FlightError(StatusCode.INTERNAL, `cannot ${what}: disk error${code ? ` ${code}` : ""}`, { cause: err });
}

function invalid(message: string): FlightError {
  return new FlightError(StatusCode.INVALID_ARGUMENT, message);
}

/** A call argument in [min, max], refused with `makeError` (INVALID_ARGUMENT) in the options' shape. */
function checkNumberOr(makeError: (msg: string) => Error, where: string, name: string, v: unknown, min: number, max: number): number {
  return checkNumberIn(where, name, v, min, max, `a number from ${min} to ${max}`, undefined, makeError);
}

function checkMessage(message: StoredMessage, what: string): void {
  if (typeof message !== "object" || message === null || typeof message.info !== "object" || message.info === null || !(message.header instanceof Uint8Array)) {
    throw invalid(`${what} is not a stored message`);
  }
}
