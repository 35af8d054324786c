// Reads a redirected TCP connection's original destination (what iptables REDIRECT rewrote) for Trellis's proxy:
// getsockopt(SO_ORIGINAL_DST) for IPv4 and getsockopt(IP6T_SO_ORIGINAL_DST) for IPv6, exposed to Node.js through N-API
// as getOriginalDst(fd) -> { address, port, family }. Node.js has no API for it, and the proxy needs it to hand a
// captured connection to the listener of the address the application dialled (Envoy's original_dst listener filter).
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

// Throws a JavaScript Error whose code is the errno name, so callers can tell "not redirected" (ENOENT) from misuse.
static void throw_errno(napi_env env, const char* what, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  const char* code = err == ENOENT ? "ENOENT" : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : err == ENOPROTOOPT ? "ENOPROTOOPT" : "EIO";
  napi_throw_error(env, code, message);
}

static napi_value make_result(napi_env env, const char* address, unsigned port, int family) {
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "address", value);
  napi_create_uint32(env, port, &value);
  napi_set_named_property(env, result, "port", value);
  napi_create_string_utf8(env, family == AF_INET6 ? "IPv6" : "IPv4", NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "family", value);
  return result;
}

static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getOriginalDst(fd): fd (a number) is required");
    return NULL;
  }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getOriginalDst(fd): fd must be a non-negative integer");
    return NULL;
  }
  // The socket's own family decides which option applies: an IPv6 socket carries IPv6 (or v4-mapped) destinations.
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  if (getsockname(fd, (struct sockaddr*)&local, &local_len) != 0) {
    throw_errno(env, "getsockname", errno);
    return NULL;
  }
  char text[INET6_ADDRSTRLEN];
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0) {
      inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
      return make_result(env, text, ntohs(dst.sin6_port), AF_INET6);
    }
    // A dual-stack socket accepting an IPv4 connection keeps IPv4 NAT state: ask the IPv4 table next.
    if (errno != ENOENT && errno != ENOPROTOOPT) {
      throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
      return NULL;
    }
  } else if (local.ss_family != AF_INET) {
    throw_errno(env, "getOriginalDst", ENOTSOCK);
    return NULL;
  }
  struct sockaddr_in dst4;
  socklen_t len4 = sizeof dst4;
  memset(&dst4, 0, sizeof dst4);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &len4) != 0) {
    throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    return NULL;
  }
  inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof text);
  return make_result(env, text, ntohs(dst4.sin_port), AF_INET);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "getOriginalDst", NAPI_AUTO_LENGTH, get_original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "getOriginalDst", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
