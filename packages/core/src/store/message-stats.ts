import { readSchema } from "../ipc/schema-info";
import type { BatchStats } from "../ipc/batch-stats";
import type { SchemaInfo } from "../ipc/arrow-schema";
import { MessageKind, type StoredMessage } from "../ipc/ipc-message";
import type { MessageStats } from "./flight-store";

// The `StoredFlight.batchStats()` entries MemoryStore and DiskStore hand out, made the same way.

/** The entry of a dictionary batch (shared: it never has statistics). */
export const DICTIONARY_STATS: MessageStats = Object.freeze({ kind: MessageKind.DICTIONARY_BATCH, stats: undefined });
/** The entry of a record batch without statistics (shared). */
export const BATCH_WITHOUT_STATS: MessageStats = Object.freeze({ kind: MessageKind.RECORD_BATCH, stats: undefined });

/** The entry of a record batch with `stats` (frozen), or {@link BATCH_WITHOUT_STATS} when it has none. */
export function recordBatchStats(stats: BatchStats | undefined): MessageStats {
  return stats === undefined ? BATCH_WITHOUT_STATS : Object.freeze({ kind: MessageKind.RECORD_BATCH, stats });
}

/** The schema of a flight for statistics, or null when it cannot be read (then its batches get none). */
export function schemaForStats(schema: StoredMessage): SchemaInfo | null {
  try {
    return readSchema(schema.header);
  } catch {
    return null;
  }
}
