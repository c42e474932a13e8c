/* A token bucket on the transfer's own byte count: what it may have moved
 * is bps x elapsed + a burst, from a window start that moves up whenever
 * the transfer is behind, so unused time is never saved up. */
#include "rate.h"

/* An eighth of a second's worth, at least 16 KiB (one TLS record). */
static uint64_t burst(const struct rate *r)
{
	uint64_t b = r->bps / 8;

	return b < 16384 ? 16384 : b;
}

void rate_set(struct rate *r, uint64_t bps, uint64_t now_ms, uint64_t bytes)
{
	r->bps = bps;
	r->t0_ms = now_ms;
	r->bytes0 = bytes;
}

/* Bytes that may still go now; the window restarts when the transfer is
 * behind. */
static uint64_t credit(struct rate *r, uint64_t now_ms, uint64_t bytes)
{
	uint64_t elapsed = now_ms > r->t0_ms ? now_ms - r->t0_ms : 0;
	unsigned __int128 earned = (unsigned __int128)r->bps * elapsed / 1000;
	uint64_t used = bytes - r->bytes0;

	if (used < earned) {
		r->t0_ms = now_ms;
		r->bytes0 = bytes;
		return burst(r);
	}
	unsigned __int128 total = earned + burst(r);
	return total > used ? (uint64_t)(total - used) : 0;
}

size_t rate_allowance(struct rate *r, uint64_t now_ms, uint64_t bytes, size_t cap)
{
	if (r->bps == 0)
		return cap;
	uint64_t c = credit(r, now_ms, bytes);
	return c < cap ? (size_t)c : cap;
}

int rate_wait_ms(struct rate *r, uint64_t now_ms, uint64_t bytes, size_t want)
{
	if (r->bps == 0)
		return -1;
	uint64_t c = credit(r, now_ms, bytes);
	if (want > burst(r))
		want = (size_t)burst(r);
	if (c >= want)
		return 0;
	uint64_t ms = ((want - c) * 1000 + r->bps - 1) / r->bps;
	return ms > 1000 ? 1000 : ms == 0 ? 1 : (int)ms;
}
