/* ck_peers.c: thin C adapters over Concurrency Kit's ticket, FAS and MCS spinlocks. */
#include "ck_peers.h"

#include <ck_spinlock.h>

_Static_assert(sizeof(ck_spinlock_ticket_t) <= sizeof(kp_ck_lock), "ticket lock fits");
_Static_assert(sizeof(ck_spinlock_fas_t) <= sizeof(kp_ck_lock), "fas lock fits");
_Static_assert(sizeof(ck_spinlock_mcs_t) <= sizeof(kp_ck_lock), "mcs lock fits");
_Static_assert(sizeof(ck_spinlock_mcs_context_t) <= sizeof(kp_ck_mcs_node), "mcs node fits");

void kp_ck_ticket_init(kp_ck_lock* l) { ck_spinlock_ticket_init((ck_spinlock_ticket_t*)l->bytes); }
void kp_ck_ticket_lock(kp_ck_lock* l) { ck_spinlock_ticket_lock((ck_spinlock_ticket_t*)l->bytes); }
void kp_ck_ticket_unlock(kp_ck_lock* l) { ck_spinlock_ticket_unlock((ck_spinlock_ticket_t*)l->bytes); }

void kp_ck_fas_init(kp_ck_lock* l) { ck_spinlock_fas_init((ck_spinlock_fas_t*)l->bytes); }
void kp_ck_fas_lock(kp_ck_lock* l) { ck_spinlock_fas_lock((ck_spinlock_fas_t*)l->bytes); }
void kp_ck_fas_unlock(kp_ck_lock* l) { ck_spinlock_fas_unlock((ck_spinlock_fas_t*)l->bytes); }

void kp_ck_mcs_init(kp_ck_lock* l) { ck_spinlock_mcs_init((ck_spinlock_mcs_t*)l->bytes); }
void kp_ck_mcs_lock(kp_ck_lock* l, kp_ck_mcs_node* n) {
  ck_spinlock_mcs_lock((ck_spinlock_mcs_t*)l->bytes, (ck_spinlock_mcs_context_t*)n->bytes);
}
void kp_ck_mcs_unlock(kp_ck_lock* l, kp_ck_mcs_node* n) {
  ck_spinlock_mcs_unlock((ck_spinlock_mcs_t*)l->bytes, (ck_spinlock_mcs_context_t*)n->bytes);
}
