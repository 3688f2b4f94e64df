import type { Config } from "jest";
import base from "./jest.config";

/**
 * The fast tier (`npm run test:unit`): the tests beside the code in packages/, without peers
 * (pyarrow, arrow-go, redis, chromium) and without the suites named `*.slow.test.ts`, which
 * start processes or worker threads, or move hundreds of MiB. `npm test` runs everything.
 */
const config: Config = {
  ...base,
  roots: ["<rootDir>/packages"],
  testPathIgnorePatterns: ["/node_modules/", "\\.slow\\.test\\.ts$"],
};

export default config;
