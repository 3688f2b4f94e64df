// Option checks shared by the stores (MemoryStore, DiskStore).

/** Validates a number option; throws `makeError(description)` naming it and its range. */
export function checkRange(value: unknown, name: string, min: number, max: number, range: string, makeError: (msg: string) => Error): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw makeError(`${name} must be ${range}; got ${typeof value === "number" ? String(value) : typeof value}`);
  }
  return value;
}
