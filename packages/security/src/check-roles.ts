import { checkStringArray } from "@blackice/flight-core";

/** Validates a list of roles (an array of non-empty strings) and returns a frozen copy without duplicates. */
export function checkRoles(where: string, roles: unknown): readonly string[] {
  return Object.freeze([...new Set(checkStringArray(where, "roles", roles, true, 'an array of non-empty strings, e.g. ["admin"]'))]);
}
