/* The transfer pace of download-rate and upload-rate: a simulated sender
 * moves what the bucket allows, and the average is the rate. */
#include <stdint.h>

#include "check.h"
#include "rate.h"

/* Send total bytes at most chunk at a time, advancing a simulated clock by
 * what rate_wait_ms asks; the milliseconds it took. */
static uint64_t simulate(uint64_t bps, uint64_t total, size_t chunk)
{
	struct rate r;
	uint64_t now = 1000000, bytes = 0;

	rate_set(&r, bps, now, 0);
	while (bytes < total) {
		size_t n = rate_allowance(&r, now, bytes, chunk);
		if (n > total - bytes)
			n = (size_t)(total - bytes);
		if (n == 0) {
			int w = rate_wait_ms(&r, now, bytes, chunk);
			CHECK(w > 0 && w <= 1000);
			if (w <= 0)
				return 0;
			now += (uint64_t)w;
			continue;
		}
		bytes += n;
	}
	return now - 1000000;
}

static void test_unlimited(void)
{
	struct rate r;

	rate_set(&r, 0, 5, 0);
	CHECK(rate_allowance(&r, 5, 1u << 30, 4096) == 4096);
	CHECK(rate_wait_ms(&r, 5, 1u << 30, 4096) == -1);
}

static void test_average(void)
{
	/* 20 MiB at 2 MiB/s: 10 s, within the burst (1/8 s). */
	uint64_t ms = simulate(2u << 20, 20u << 20, 256 * 1024);
	CHECK(ms >= 9800 && ms <= 10000);
	/* Small chunks, slow rate: 100 KiB at 10 KiB/s. */
	ms = simulate(10240, 102400, 16384);
	CHECK(ms >= 8300 && ms <= 10000);
	/* A rate above what the chunks need a millisecond for. */
	ms = simulate(1ull << 33, 1ull << 33, 4u << 20);
	CHECK(ms >= 800 && ms <= 1000);
}

static void test_no_saving_up(void)
{
	struct rate r;

	rate_set(&r, 1000000, 0, 0);
	/* Idle for a minute: at most one burst may go, not a minute's worth. */
	CHECK(rate_allowance(&r, 60000, 0, SIZE_MAX) == 125000);
	CHECK(rate_allowance(&r, 60000, 125000, SIZE_MAX) == 0);
	CHECK(rate_wait_ms(&r, 60000, 125000, 16384) == 17);
	/* A changed rate starts a new window. */
	rate_set(&r, 2000000, 60000, 125000);
	CHECK(rate_allowance(&r, 60000, 125000, SIZE_MAX) == 250000);
}

static void test_huge_values(void)
{
	struct rate r;

	/* No overflow: the largest rate over a long time. */
	rate_set(&r, UINT64_MAX >> 20, 0, 0);
	CHECK(rate_allowance(&r, 1ull << 40, 0, 1u << 20) == 1u << 20);
}

int main(void)
{
	test_unlimited();
	test_average();
	test_no_saving_up();
	test_huge_values();
	return CHECK_DONE();
}
