/* PROXY protocol v1 and v2 (HAProxy's "send-proxy" / "send-proxy-v2"): the
 * client's real address, sent by a trusted load balancer before anything
 * else on the connection. Pure parsing, fuzzed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* No valid header is longer (v1: 107 bytes; v2: 16 + 520, HAProxy's cap). */
#define PROXY_MAX_HEADER 536

/* Parse a header at the start of buf. Returns its length when complete, with
 * *src the client's address (or *local true for a health check / UNKNOWN:
 * keep the connection's own address), 0 when more bytes are needed, -EINVAL
 * when buf does not start with a valid header. */
int proxy_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *src, bool *local);

/* Is addr one of the comma-separated addresses in list? -EINVAL for a bad list. */
int proxy_address_listed(const char *list, const struct sockaddr_storage *addr);
