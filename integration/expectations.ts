// What each matrix cell is expected to do. Everything passes except:
//   - cells apache-arrow JS cannot run (a type it lacks): "unsupported", with the type named;
//   - scenarios the Go peer does not have: "not-applicable";
//   - KNOWN_GAPS: cells that fail today because the BlackIce library lacks something. They
//     are expected to fail *with the named symptom*; a different failure, or a pass, makes the
//     matrix test fail, so that a fix (or a new break) cannot go unnoticed: when a gap is
//     fixed, delete its entry here.

import type { Cell, CellResult, Status } from "./matrix";

export interface Expectation {
  status: Status;
  /** For an expected failure: the library gap, in words (goes into docs/conformance.md). */
  gap?: string;
  /** For an expected failure or unsupported cell: the failure text must match this. */
  match?: RegExp;
}

/** Facts about a dataset the expectations depend on. */
export interface DatasetFacts {
  /** Record batches in the JSON file. */
  batches: number;
}

interface KnownGap {
  applies(cell: Cell, facts: DatasetFacts | undefined): boolean;
  gap: string;
  match: RegExp;
  /** "fail" when the peer fails the cell; "library-gap" when our side reports the missing API itself. */
  status: "fail" | "library-gap";
}

// None at present: the last ones (client middleware for the middleware and session_options
// scenarios; Action{} with an empty type for auth:basic_proto) were closed in FlightClient.
export const KNOWN_GAPS: readonly KnownGap[] = [];

/** The expected outcome of a cell. */
export function expectationFor(cell: Cell, facts: DatasetFacts | undefined, goKnows: ReadonlySet<string>): Expectation {
  if (!goKnows.has(cell.scenario)) return { status: "not-applicable" };
  if (cell.direction === "client" && cell.dataset && /generated_list_view$/.test(cell.dataset)) {
    return { status: "unsupported", match: /^list_view: apache-arrow JS has no ListView type/ };
  }
  if (cell.direction === "client" && cell.dataset && /generated_run_end_encoded$/.test(cell.dataset)) {
    return { status: "unsupported", match: /^run_end_encoded: apache-arrow JS has no RunEndEncoded type/ };
  }
  const gap = KNOWN_GAPS.find((g) => g.applies(cell, facts));
  if (gap) return { status: gap.status, gap: gap.gap, match: gap.match };
  return { status: "pass" };
}

/** Undefined when the result is as expected; otherwise why not. */
export function checkExpectation(result: CellResult, expected: Expectation): string | undefined {
  if (result.status !== expected.status) {
    if ((expected.status === "fail" || expected.status === "library-gap") && result.status === "pass") {
      return `now passes, but is listed as a known library gap ("${expected.gap}"): remove it from KNOWN_GAPS in integration/expectations.ts`;
    }
    return `expected ${expected.status}, got ${result.status}${result.reason ? `: ${result.reason}` : ""}`;
  }
  if (expected.match && !expected.match.test(result.reason ?? "")) {
    return `${result.status} as expected, but not for the expected reason ${expected.match}: ${result.reason}`;
  }
  return undefined;
}
