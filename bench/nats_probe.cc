// nats_probe: how many ~16-byte tasks a second go into a replicated JetStream
// stream and out again, when each message carries 1, 16, 64 or 256 of them.
// It decides how the NATS store batches (docs/STORE-NATS.md, "Batching").
//
// For each batch size B: a fresh WorkQueue stream (file storage, --replicas,
// 3 by default), TASKS/B messages of B*16 bytes published with
// js_PublishAsync (at most --pending unacknowledged) until every publish is
// acknowledged; then one durable pull consumer fetches --fetch messages at a
// time and acks each (natsMsg_Ack, not waited for), until the stream is empty,
// which is when the acks have been applied. Prints tasks/s for each half.
//
// Usage: nats_probe [--urls nats://127.0.0.1:4222,...] [--tasks 1000000]
//                   [--replicas 3] [--pending 4096] [--fetch 256]
// The default URLs are the three servers of deploy/nats.
#include <nats/nats.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string urls = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224";
  long tasks = 1000000;
  int replicas = 3;
  int pending = 4096;
  int fetch = 256;
};

void Check(natsStatus s, const char* what) {
  if (s == NATS_OK) return;
  std::fprintf(stderr, "nats_probe: %s: %s\n", what, natsStatus_GetText(s));
  nats_PrintLastErrorStack(stderr);
  std::exit(1);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--urls") o.urls = v;
    else if (k == "--tasks") o.tasks = std::stol(v);
    else if (k == "--replicas") o.replicas = std::stoi(v);
    else if (k == "--pending") o.pending = std::stoi(v);
    else if (k == "--fetch") o.fetch = std::stoi(v);
    else {
      std::fprintf(stderr, "nats_probe: unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return o;
}

natsConnection* Connect(const std::string& urls) {
  std::vector<std::string> list;
  std::istringstream in(urls);
  for (std::string u; std::getline(in, u, ',');) list.push_back(u);
  std::vector<const char*> servers;
  for (const std::string& u : list) servers.push_back(u.c_str());
  natsOptions* opts = nullptr;
  Check(natsOptions_Create(&opts), "options");
  Check(natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size())), "servers");
  natsConnection* nc = nullptr;
  Check(natsConnection_Connect(&nc, opts), "connect");
  natsOptions_Destroy(opts);
  return nc;
}

uint64_t StreamMsgs(jsCtx* js, const char* stream) {
  jsStreamInfo* si = nullptr;
  Check(js_GetStreamInfo(&si, js, stream, nullptr, nullptr), "stream info");
  const uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Publishes msgs messages of payload bytes; returns the seconds taken.
double Publish(jsCtx* js, const char* subject, long msgs, const std::string& payload) {
  const Clock::time_point start = Clock::now();
  for (long i = 0; i < msgs; ++i)
    Check(js_PublishAsync(js, subject, payload.data(), static_cast<int>(payload.size()), nullptr),
          "publish");
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  Check(js_PublishAsyncComplete(js, &po), "publish complete");
  natsMsgList failed{nullptr, 0};
  if (js_PublishAsyncGetPendingList(&failed, js) == NATS_OK) {
    std::fprintf(stderr, "nats_probe: %d publishes not acknowledged\n", failed.Count);
    std::exit(1);
  }
  return Seconds(start);
}

// Fetches and acks until the stream is empty; returns the seconds taken.
double Consume(jsCtx* js, const char* stream, const char* subject, long msgs, int fetch) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.MaxAckPending = 1 << 20;
  natsSubscription* sub = nullptr;
  Check(js_PullSubscribe(&sub, js, subject, "probe", nullptr, &so, nullptr), "pull subscribe");
  const Clock::time_point start = Clock::now();
  for (long got = 0; got < msgs;) {
    natsMsgList list{nullptr, 0};
    const natsStatus s = natsSubscription_Fetch(&list, sub, fetch, 5000, nullptr);
    if (s != NATS_TIMEOUT) Check(s, "fetch");
    for (int i = 0; i < list.Count; ++i) Check(natsMsg_Ack(list.Msgs[i], nullptr), "ack");
    got += list.Count;
    natsMsgList_Destroy(&list);
  }
  while (StreamMsgs(js, stream) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double seconds = Seconds(start);
  natsSubscription_Destroy(sub);
  return seconds;
}

void Run(jsCtx* js, const Options& o, int batch) {
  const std::string name = "PROBE" + std::to_string(batch);
  const std::string subject = "probe." + std::to_string(batch);
  js_DeleteStream(js, name.c_str(), nullptr, nullptr);  // left by an earlier run, if any
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_WorkQueuePolicy;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = o.replicas;
  Check(js_AddStream(nullptr, js, &cfg, nullptr, nullptr), "add stream");

  const long msgs = o.tasks / batch;
  const std::string payload(static_cast<std::size_t>(batch) * 16, 'x');
  const double put = Publish(js, subject.c_str(), msgs, payload);
  const double take = Consume(js, name.c_str(), subject.c_str(), msgs, o.fetch);
  const double tasks = static_cast<double>(msgs) * batch;
  std::printf("%4d tasks/msg %8ld msgs %6d B: publish %10.0f tasks/s (%7.0f msgs/s)   "
              "fetch+ack %10.0f tasks/s (%7.0f msgs/s)   both %10.0f tasks/s\n",
              batch, msgs, batch * 16, tasks / put, msgs / put, tasks / take, msgs / take,
              tasks / (put + take));
  std::fflush(stdout);
  js_DeleteStream(js, name.c_str(), nullptr, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  natsConnection* nc = Connect(o.urls);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = o.pending;
  jo.Wait = 10000;
  jsCtx* js = nullptr;
  Check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
  std::printf("%ld tasks of 16 B, R%d file streams, %d publishes in flight, fetch %d\n", o.tasks,
              o.replicas, o.pending, o.fetch);
  for (int batch : {1, 16, 64, 256}) Run(js, o, batch);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  nats_Close();
  return 0;
}
