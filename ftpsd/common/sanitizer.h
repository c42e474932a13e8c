/* FTPSD_SANITIZED is 1 in ASan/UBSan builds (tests only), where the
 * sandboxes let the sanitizer runtime work and keep its reports. */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define FTPSD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FTPSD_SANITIZED 1
#endif
#endif
#ifndef FTPSD_SANITIZED
#define FTPSD_SANITIZED 0
#endif
