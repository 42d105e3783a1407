/*
 * gate.h - how many PKIOperations use the CPU at once, in arrival order.
 *
 * An enrollment is mostly CPU (three RSA private-key operations) with a
 * wait in the middle (the group commit's fsync, or a validation service).
 * More workers than cores are needed to cover those waits, but left to the
 * kernel's scheduler the workers then share the cores: every request in
 * progress advances a little and all of them finish late, and a request
 * may be preempted for a whole time slice at any point (at 8 clients the
 * p99 was 2-2.5 times the median).  The gate lets `slots` holders (one per
 * core) do CPU work at a time, hands a freed slot to the longest waiter
 * (FIFO), and is left while its holder waits for anything but the CPU.
 *
 * A thread holds at most one slot.  scep_gate_pause/resume are what a
 * library function calls around a wait: they do nothing on a thread that
 * holds no slot (an admin request, a test), so callers need not know
 * whether they run under a gate.  Thread-safe.
 */
#ifndef SCEPD_GATE_H
#define SCEPD_GATE_H

struct scep_gate;

/* slots >= 1; NULL on ENOMEM. */
struct scep_gate *scep_gate_new(unsigned slots);
/* Every slot must have been left. NULL-safe. */
void scep_gate_free(struct scep_gate *g);

/* Take a slot (blocks, FIFO); no-op if this thread holds one or g is NULL. */
void scep_gate_enter(struct scep_gate *g);
/* Give the slot back; no-op if this thread holds none. */
void scep_gate_leave(struct scep_gate *g);

/*
 * Around a wait that is not CPU work (a durable commit, an outbound
 * request): pause returns 1 if it left a slot (pass it to resume, which
 * then takes one again), 0 if this thread held none.
 */
int scep_gate_pause(struct scep_gate *g);
void scep_gate_resume(struct scep_gate *g, int paused);

/* Slots in use now, and threads waiting for one (for metrics and tests). */
void scep_gate_counts(struct scep_gate *g, unsigned *busy, unsigned *waiting);

#endif
