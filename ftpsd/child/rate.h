/* A transfer's pace (download-rate, upload-rate): at most bps bytes a
 * second on average, with a burst so that a buffer can go out whole. Time
 * a transfer falls behind (a slow peer, a full disk) is not made up later. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct rate {
	uint64_t bps;    /* 0: unlimited, and none of this costs anything */
	uint64_t t0_ms;  /* the window's start */
	uint64_t bytes0; /* the transfer's byte count then */
};

/* (Re)start pacing at bps from now, the transfer having moved bytes. */
void rate_set(struct rate *r, uint64_t bps, uint64_t now_ms, uint64_t bytes);
/* How many bytes may go now, at most cap (cap when unlimited). */
size_t rate_allowance(struct rate *r, uint64_t now_ms, uint64_t bytes, size_t cap);
/* Milliseconds until want bytes may go: 0 now, at most 1000 (so that a
 * changed rate is seen), -1 when unlimited. */
int rate_wait_ms(struct rate *r, uint64_t now_ms, uint64_t bytes, size_t want);
