/** Validates a list of roles (an array of non-empty strings) and returns a frozen copy without duplicates. */
export function checkRoles(where: string, roles: unknown): readonly string[] {
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string" && r.length > 0)) {
    throw new TypeError(`${where}: roles must be an array of non-empty strings, e.g. ["admin"]`);
  }
  return Object.freeze([...new Set(roles as string[])]);
}
