// @blackice/flight-cluster: several BlackIce Flight servers sharing one catalog in Redis (docs/cluster.md).

// ---- for server users ----
export { cluster } from "./cluster";
export type { ClusterOptions } from "./cluster";

// ---- for middleware authors ----
export { CLUSTER_COPY_HEADER, CLUSTER_LOCAL_HEADER } from "./cluster-node";
