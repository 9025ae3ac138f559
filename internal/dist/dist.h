// Declarations of mose's c10d shim (dist.cpp), callable from cgo.
#ifndef MOSE_DIST_H
#define MOSE_DIST_H
#ifdef __cplusplus
extern "C" {
#endif

// mose_pg_new rendezvous through a c10d TCPStore at host:port (rank 0 serves
// it) and creates a process group: backend 0 = Gloo (CPU tensors), 1 = NCCL
// (CUDA tensors on device `device`). timeout_ms bounds the rendezvous and every
// collective. On success *out holds the group.
char *mose_pg_new(void **out, const char *host, int port, int rank, int world, int backend,
                  int device, long timeout_ms);
// mose_pg_allreduce_sum sums tensor in place across ranks and waits.
char *mose_pg_allreduce_sum(void *pg, void *tensor);
// mose_pg_broadcast copies root's tensor into every rank's, in place, and waits.
char *mose_pg_broadcast(void *pg, void *tensor, int root);
// mose_pg_barrier waits until every rank reaches it.
char *mose_pg_barrier(void *pg);
// mose_pg_free releases the group (and this rank's store connection).
void mose_pg_free(void *pg);
// mose_quiet_c10d_logs stops libtorch's C++ logging below FATAL (c10d's
// connection retries, with their C++ stack traces), unless TORCH_CPP_LOG_LEVEL
// is set: mose reports every rendezvous and collective failure itself.
void mose_quiet_c10d_logs(void);
// mose_nccl_available reports whether this build can create NCCL groups.
int mose_nccl_available(void);

#ifdef __cplusplus
}
#endif
#endif
