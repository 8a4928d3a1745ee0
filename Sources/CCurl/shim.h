#ifndef TOKENVAULT_CCURL_SHIM_H
#define TOKENVAULT_CCURL_SHIM_H

// curl.h includes <sys/socket.h>, <stdio.h> and more. Taken from Swift's glibc module first: included textually
// here, their declarations (SOCK_STREAM…) could end up owned by this module, and a Swift file that uses them
// without importing CCurl then fails with "cannot find 'SOCK_STREAM' in scope" whenever the compiler happened to
// load this module first in the same job.
#if defined(__linux__) && __has_feature(modules)
#pragma clang module import SwiftGlibc
#endif

// The type-checking macros wrap curl_easy_setopt, which is never called by name here.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

// The types of the functions VaultOAuth looks up with dlsym, taken from their declarations so they cannot drift.
typedef __typeof__(&curl_global_init) tv_curl_global_init;
typedef __typeof__(&curl_version_info) tv_curl_version_info;
typedef __typeof__(&curl_easy_init) tv_curl_easy_init;
typedef __typeof__(&curl_easy_reset) tv_curl_easy_reset;
typedef __typeof__(&curl_easy_cleanup) tv_curl_easy_cleanup;
typedef __typeof__(&curl_easy_strerror) tv_curl_easy_strerror;
typedef __typeof__(&curl_slist_append) tv_curl_slist_append;
typedef __typeof__(&curl_slist_free_all) tv_curl_slist_free_all;
typedef __typeof__(&curl_multi_init) tv_curl_multi_init;
typedef __typeof__(&curl_multi_add_handle) tv_curl_multi_add_handle;
typedef __typeof__(&curl_multi_remove_handle) tv_curl_multi_remove_handle;
typedef __typeof__(&curl_multi_perform) tv_curl_multi_perform;
typedef __typeof__(&curl_multi_poll) tv_curl_multi_poll;
typedef __typeof__(&curl_multi_wakeup) tv_curl_multi_wakeup;
typedef __typeof__(&curl_multi_info_read) tv_curl_multi_info_read;

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these call them (through the
// pointer dlsym returned) with one fixed argument type each.
typedef CURLcode (*tv_setopt_fn)(CURL *, CURLoption, ...);
typedef CURLcode (*tv_getinfo_fn)(CURL *, CURLINFO, ...);

static inline CURLcode tv_setopt_long(void *fn, CURL *h, CURLoption o, long v) {
    return ((tv_setopt_fn)fn)(h, o, v);
}
static inline CURLcode tv_setopt_offset(void *fn, CURL *h, CURLoption o, curl_off_t v) {
    return ((tv_setopt_fn)fn)(h, o, v);
}
static inline CURLcode tv_setopt_pointer(void *fn, CURL *h, CURLoption o, const void *v) {
    return ((tv_setopt_fn)fn)(h, o, v);
}
static inline CURLcode tv_setopt_callback(void *fn, CURL *h, CURLoption o, curl_write_callback v) {
    return ((tv_setopt_fn)fn)(h, o, v);
}
static inline CURLcode tv_getinfo_long(void *fn, CURL *h, CURLINFO i, long *v) {
    return ((tv_getinfo_fn)fn)(h, i, v);
}

#endif
