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
#include <vector>

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
  if (detail != nullptr && *detail != '\0' && text != detail) text += ": " + std::string(detail);
  return text;
}

// Options to connect to urls ("nats://h:p,nats://h:p"), waiting at most
// timeout for each server's greeting; null, with *status, on failure. A list
// goes to natsOptions_SetServers: natsOptions_SetURL takes one URL and does
// not split a list.
inline NatsPtr<natsOptions> NatsServerOptions(const std::string& urls,
                                              std::chrono::milliseconds timeout,
                                              natsStatus* status) {
  std::vector<std::string> list;
  std::istringstream in(urls);
  for (std::string url; std::getline(in, url, ',');)
    if (!url.empty()) list.push_back(url);
  std::vector<const char*> servers;
  for (const std::string& url : list) servers.push_back(url.c_str());
  natsOptions* raw = nullptr;
  natsStatus s = natsOptions_Create(&raw);
  NatsPtr<natsOptions> opts(raw);
  if (s == NATS_OK)
    s = natsOptions_SetServers(opts.get(), servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), timeout.count());
  *status = s;
  return s == NATS_OK ? std::move(opts) : nullptr;
}

}  // namespace taskq

#endif  // TASKQ_MASTER_NATS_HANDLE_H_
