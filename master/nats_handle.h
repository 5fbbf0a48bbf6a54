// Owners for libnats objects (NatsPtr<natsConnection> and so on), the text of
// a libnats failure and connection options, for the NATS store and its tests.
//
// Thread: NatsError reads libnats's last error of the calling thread, so call
// it on the thread whose libnats call failed, before its next one.
#ifndef TASKQ_MASTER_NATS_HANDLE_H_
#define TASKQ_MASTER_NATS_HANDLE_H_

#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace taskq {

struct NatsDeleter {
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
  void operator()(jsAccountInfo* p) const { jsAccountInfo_Destroy(p); }
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// libnats's text for s, with its last error's detail when that says more.
inline std::string NatsError(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string text = natsStatus_GetText(s);
  // The detail often repeats the text after libnats's "(file.c:line): ".
  if (detail != nullptr && *detail != '\0' &&
      std::string_view(detail).find(text) == std::string_view::npos)
    text += ": " + std::string(detail);
  return text;
}

// Options to connect to urls ("nats://h:p,nats://h:p"), waiting at most
// timeout for each server's greeting; null, with *status, on failure. A list
// goes to natsOptions_SetServers: natsOptions_SetURL takes one URL and does
// not split a list.
NatsPtr<natsOptions> NatsServerOptions(const std::string& urls, std::chrono::milliseconds timeout,
                                       natsStatus* status);

// "nats://user:pass@h:p,..." shown as "nats://h:p,...": messages never
// carry credentials.
std::string ShownNatsUrls(const std::string& urls);

// How to reach the servers: credentials, if they ask for them (a token, or
// a user and password), and the time to wait for a greeting (per URL) and
// for a JetStream answer.
struct NatsConnectOptions {
  std::string token;
  std::string user, password;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
};

// A Status for a failed libnats call: "what at URLS: text (JetStream error
// N)", coded kTimeout, kUnavailable (no server, no responders) or kIo.
Status NatsFailed(const std::string& what, const std::string& shown_urls, natsStatus s,
                  jsErrCode code = jsErrCode{});

// Connects to urls and opens its JetStream context. kUnavailable, with a
// sentence saying what to check, when no server answers; kInvalid for no URL.
Status NatsConnect(const std::string& urls, const NatsConnectOptions& options,
                   NatsPtr<natsConnection>* nc, NatsPtr<jsCtx>* js);

// Creates the stream cfg, or checks that it exists with this configuration
// (js_AddStream is idempotent; another configuration is refused: kInvalid).
// A cluster just started may have its metadata leader before it knows its
// peers: "no suitable peers" (10005) is asked again until timeout.
Status NatsEnsureStream(jsCtx* js, jsStreamConfig* cfg, std::chrono::milliseconds timeout,
                        const std::string& shown_urls);

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_HANDLE_H_
