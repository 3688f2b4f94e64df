import type { Config } from "jest";

/**
 * Tests live beside the source as `*.test.ts` and run against the TypeScript sources
 * directly (ts-jest), so the packages resolve to each other's `src/index.ts` barrels.
 */
const config: Config = {
  testEnvironment: "node",
  roots: ["<rootDir>/packages", "<rootDir>/examples", "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.test.json" }],
  },
  moduleNameMapper: {
    "^@blackice/flight-core$": "<rootDir>/packages/core/src/index.ts",
    "^@blackice/flight$": "<rootDir>/packages/flight/src/index.ts",
    "^@blackice/flight/internal$": "<rootDir>/packages/flight/src/internal.ts",
    "^@blackice/flight-security$": "<rootDir>/packages/security/src/index.ts",
    "^@blackice/flight-resilience$": "<rootDir>/packages/resilience/src/index.ts",
    "^@blackice/flight-cluster$": "<rootDir>/packages/cluster/src/index.ts",
    "^@blackice/flight-cli$": "<rootDir>/packages/cli/src/index.ts",
  },
  testTimeout: 60_000,
};

export default config;
