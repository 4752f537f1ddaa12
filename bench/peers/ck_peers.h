/* ck_peers.h: Concurrency Kit spinlocks as peers, behind C (ck_spinlock_mcs.h is not valid C++).
 * Each call is out of line (about a nanosecond of call overhead the inlined contenders do not
 * pay); compare ck peers with each other, and with kprim only for contended figures. */
#ifndef KPRIM_BENCH_CK_PEERS_H
#define KPRIM_BENCH_CK_PEERS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Storage for any of the ck locks below; ck_peers.c static_asserts that each fits. */
typedef struct kp_ck_lock {
  unsigned char bytes[64];
} __attribute__((aligned(64))) kp_ck_lock;

/* Per-thread queue node for the MCS lock (ck_spinlock_mcs_context_t). */
typedef struct kp_ck_mcs_node {
  unsigned char bytes[16];
} __attribute__((aligned(16))) kp_ck_mcs_node;

void kp_ck_ticket_init(kp_ck_lock* l);
void kp_ck_ticket_lock(kp_ck_lock* l);
void kp_ck_ticket_unlock(kp_ck_lock* l);

void kp_ck_fas_init(kp_ck_lock* l);
void kp_ck_fas_lock(kp_ck_lock* l);
void kp_ck_fas_unlock(kp_ck_lock* l);

void kp_ck_mcs_init(kp_ck_lock* l);
void kp_ck_mcs_lock(kp_ck_lock* l, kp_ck_mcs_node* n);
void kp_ck_mcs_unlock(kp_ck_lock* l, kp_ck_mcs_node* n);

#ifdef __cplusplus
}
#endif

#endif
