/* libFuzzer target: one datagram from a hostile child, decoded and checked
 * by the monitor in every phase. */
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "monitor_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ipc_msg m;
	static struct mon_request r;

	for (unsigned phase = PHASE_PRELOGIN; phase <= PHASE_LOGGEDIN; phase++) {
		if (ipc_decode(&m, data, size) < 0)
			return 0;
		(void)monitor_decode(&m, phase, &r);
	}
	return 0;
}
