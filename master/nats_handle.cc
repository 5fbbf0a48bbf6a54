// Connecting to NATS, making streams and saying what failed, shared by the
// NATS store and the NATS journal medium.
#include "master/nats_handle.h"

#include <thread>

namespace taskq {
namespace {

std::vector<std::string> SplitUrls(const std::string& urls) {
  std::vector<std::string> list;
  std::istringstream in(urls);
  for (std::string url; std::getline(in, url, ',');)
    if (!url.empty()) list.push_back(url);
  return list;
}

}  // namespace

NatsPtr<natsOptions> NatsServerOptions(const std::string& urls, std::chrono::milliseconds timeout,
                                       natsStatus* status) {
  const std::vector<std::string> list = SplitUrls(urls);
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

std::string ShownNatsUrls(const std::string& urls) {
  std::string shown;
  for (const std::string& url : SplitUrls(urls)) {
    const std::size_t scheme = url.find("://");
    const std::size_t from = scheme == std::string::npos ? 0 : scheme + 3;
    // The last '@' of the authority: a password may hold '@' itself.
    const std::size_t end = url.find('/', from);
    const std::size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end - 1);
    const bool credentials = at != std::string::npos && at >= from;
    if (!shown.empty()) shown += ',';
    shown += credentials ? url.substr(0, from) + url.substr(at + 1) : url;
  }
  return shown;
}

Status NatsFailed(const std::string& what, const std::string& shown_urls, natsStatus s,
                  jsErrCode code) {
  std::string text = what + " at " + shown_urls + ": " + NatsError(s);
  if (code != 0) text += " (JetStream error " + std::to_string(code) + ")";
  const Code c = s == NATS_TIMEOUT ? Code::kTimeout
                 : (s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED || s == NATS_NO_SERVER)
                     ? Code::kUnavailable
                     : Code::kIo;
  return Status::Error(c, text);
}

Status NatsConnect(const std::string& urls, const NatsConnectOptions& options,
                   NatsPtr<natsConnection>* nc, NatsPtr<jsCtx>* js) {
  const std::string shown = ShownNatsUrls(urls);
  if (shown.empty())
    return Status::Error(Code::kInvalid, "no NATS server given: name one as nats://HOST:PORT");
  natsStatus s = NATS_OK;
  NatsPtr<natsOptions> opts = NatsServerOptions(urls, options.connect_timeout, &s);
  if (s == NATS_OK && !options.token.empty())
    s = natsOptions_SetToken(opts.get(), options.token.c_str());
  if (s == NATS_OK && !options.user.empty())
    s = natsOptions_SetUserInfo(opts.get(), options.user.c_str(), options.password.c_str());
  if (s != NATS_OK) return NatsFailed("cannot set up a NATS connection", shown, s);
  natsConnection* raw = nullptr;
  s = natsConnection_Connect(&raw, opts.get());
  nc->reset(raw);
  if (s != NATS_OK)
    return Status::Error(Code::kUnavailable,
                         "no NATS server answered at " + shown + ": " + NatsError(s) +
                             " (is nats-server running there, reachable, with JetStream on?)");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.request_timeout.count();
  jsCtx* ctx = nullptr;
  s = natsConnection_JetStream(&ctx, nc->get(), &jo);
  js->reset(ctx);
  return s == NATS_OK ? Status::Ok() : NatsFailed("cannot use JetStream", shown, s);
}

Status NatsEnsureStream(jsCtx* js, jsStreamConfig* cfg, std::chrono::milliseconds timeout,
                        const std::string& shown_urls) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  natsStatus s = NATS_OK;
  jsErrCode code = static_cast<jsErrCode>(0);
  do {
    jsStreamInfo* si = nullptr;
    code = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, js, cfg, nullptr, &code);
    NatsPtr<jsStreamInfo> info(si);
    if (s == NATS_OK) return Status::Ok();
    if (code != JSClusterNoPeersErr) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < end);
  if (code == JSStreamNameExistErr)
    return Status::Error(Code::kInvalid, std::string("stream ") + cfg->Name + " exists at " +
                                             shown_urls +
                                             " with another configuration than this taskq's "
                                             "(another version, or another replica count?): "
                                             "remove it or use other servers");
  if (code == JSClusterNoPeersErr)
    return Status::Error(Code::kUnavailable,
                         std::string("cannot create stream ") + cfg->Name + " at " + shown_urls +
                             " with " + std::to_string(cfg->Replicas) +
                             " replicas: not as many JetStream servers answer (ask for fewer "
                             "replicas, or start the missing servers)");
  return NatsFailed(std::string("cannot create stream ") + cfg->Name, shown_urls, s, code);
}

}  // namespace taskq
