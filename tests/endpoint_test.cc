#include "client/endpoint.h"

#include <gtest/gtest.h>

namespace taskq {
namespace {

ServerAddress Parsed(std::string_view text, int default_port = 5000) {
  Result<ServerAddress> a = ParseServerAddress(text, default_port);
  EXPECT_TRUE(a.ok()) << text << ": " << a.status().message();
  return a.ok() ? *a : ServerAddress{};
}

std::string Refused(std::string_view text) {
  Result<ServerAddress> a = ParseServerAddress(text, 5000);
  EXPECT_FALSE(a.ok()) << text << " was taken as " << (a.ok() ? a->Display() : "");
  if (a.ok()) return "";
  EXPECT_EQ(a.status().code(), Code::kInvalid);
  return a.status().message();
}

TEST(ServerAddress, TakesHostAndPortInEveryFormUsersWrite) {
  EXPECT_EQ(Parsed("example.com").Display(), "example.com:5000");
  EXPECT_EQ(Parsed("example.com", 6000).Display(), "example.com:6000") << "the default port";
  EXPECT_EQ(Parsed("example.com:7000", 6000).Display(), "example.com:7000")
      << "the given port wins";
  EXPECT_EQ(Parsed("10.0.0.7:1").TcpEndpoint(), "tcp://10.0.0.7:1");
  EXPECT_EQ(Parsed("my_host-2.lan:65535").port, 65535);
  EXPECT_EQ(Parsed("tcp://127.0.0.1:5001").TcpEndpoint(), "tcp://127.0.0.1:5001");
  EXPECT_EQ(Parsed("tcp://127.0.0.1:5001/").TcpEndpoint(), "tcp://127.0.0.1:5001");
  EXPECT_EQ(Parsed("tcp://localhost").Display(), "localhost:5000");
}

TEST(ServerAddress, BracketsIpv6AddressesInAndOut) {
  const ServerAddress a = Parsed("[::1]:5002");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 5002);
  EXPECT_EQ(a.Display(), "[::1]:5002");
  EXPECT_EQ(a.TcpEndpoint(), "tcp://[::1]:5002");
  EXPECT_EQ(Parsed("[fe80::1]").Display(), "[fe80::1]:5000");
  EXPECT_EQ(Parsed("tcp://[::1]").TcpEndpoint(), "tcp://[::1]:5000");
}

TEST(ServerAddress, SaysWhatIsWrongWithTheRest) {
  EXPECT_EQ(Refused(""),
            "invalid server address '': it is empty; give HOST, HOST:PORT or tcp://HOST:PORT");
  EXPECT_NE(Refused("http://h:1").find("a taskq master is reached over tcp"), std::string::npos);
  EXPECT_NE(Refused("tcp://").find("the host is empty"), std::string::npos);
  EXPECT_NE(Refused(":5000").find("the host is empty"), std::string::npos);
  for (const char* port : {"h:0", "h:65536", "h:", "h:12x", "h:-1", "[::1]:", "[::1]:0"})
    EXPECT_NE(Refused(port).find("the port must be 1..65535"), std::string::npos) << port;
  EXPECT_NE(Refused("a:b:c").find("write IPv6 addresses as [ADDR]:PORT"), std::string::npos);
  EXPECT_NE(Refused("[::1").find("missing ']'"), std::string::npos);
  EXPECT_NE(Refused("[::1]x").find("junk after ']'"), std::string::npos);
  for (const char* host : {"bad host", "h;rm", "h/x:1", "[::1;]"})
    EXPECT_NE(Refused(host).find("a host name has only letters, digits"), std::string::npos)
        << host;
  EXPECT_NE(Refused("ho st:1").find("'ho st:1'"), std::string::npos) << "names what was given";
  // A client (taskq) takes one master; a list is for a worker.
  EXPECT_EQ(Refused("a:1,b:2"),
            "invalid server address 'a:1,b:2': it names several masters, and only a worker "
            "(task_worker, taskq.Worker) takes a list; give one HOST[:PORT]");
}

std::string Listed(std::string_view text, int default_port = 5000) {
  Result<std::vector<ServerAddress>> list = ParseServerList(text, default_port);
  EXPECT_TRUE(list.ok()) << text << ": " << list.status().message();
  std::string shown;
  for (const ServerAddress& a : list.ok() ? *list : std::vector<ServerAddress>{})
    shown += (shown.empty() ? "" : " ") + a.Display();
  return shown;
}

std::string ListRefused(std::string_view text) {
  Result<std::vector<ServerAddress>> list = ParseServerList(text, 5000);
  EXPECT_FALSE(list.ok()) << text << " was taken";
  if (list.ok()) return "";
  EXPECT_EQ(list.status().code(), Code::kInvalid);
  return list.status().message();
}

TEST(ServerList, KeepsTheOrderGivenWithTheDefaultPortWhereNoneIsGiven) {
  EXPECT_EQ(Listed("a,b:6001,tcp://c:7000"), "a:5000 b:6001 c:7000");
  EXPECT_EQ(Listed("a,b", 6000), "a:6000 b:6000") << "--port applies to each";
  EXPECT_EQ(Listed("[::1]:5001,127.0.0.1:5001"), "[::1]:5001 127.0.0.1:5001");
  EXPECT_EQ(Listed("a:5001,a:5002"), "a:5001 a:5002") << "two masters on one machine";
}

TEST(ServerList, IgnoresSpacesAroundEachMaster) {
  EXPECT_EQ(Listed(" a , b:6001 "), "a:5000 b:6001");
  EXPECT_EQ(Listed("a,\tb"), "a:5000 b:5000");
  EXPECT_NE(ListRefused("a,b c").find("'b c'"), std::string::npos) << "inside a host is an error";
}

TEST(ServerList, OneMasterIsParsedExactlyAsBeforeLists) {
  EXPECT_EQ(Listed("example.com:7000"), "example.com:7000");
  EXPECT_EQ(ListRefused(""),
            "invalid server address '': it is empty; give HOST, HOST:PORT or tcp://HOST:PORT");
  EXPECT_EQ(ListRefused(" a"), Refused(" a"));
}

TEST(ServerList, AnEmptyElementIsNamedByItsPlace) {
  EXPECT_EQ(ListRefused("a,,b"),
            "invalid server list 'a,,b': master 2 is empty; give HOST[:PORT],HOST[:PORT]... with "
            "no empty element between the commas");
  EXPECT_NE(ListRefused("a,").find("master 2 is empty"), std::string::npos);
  EXPECT_NE(ListRefused(",a").find("master 1 is empty"), std::string::npos);
  EXPECT_NE(ListRefused("a, ,b").find("master 2 is empty"), std::string::npos);
}

TEST(ServerList, AMasterListedTwiceIsRefused) {
  EXPECT_EQ(ListRefused("a,b,a:5000"),
            "invalid server list 'a,b,a:5000': it names a:5000 twice; give each master once");
  EXPECT_NE(ListRefused("Lab1,lab1").find("twice"), std::string::npos) << "host names ignore case";
  EXPECT_NE(ListRefused("tcp://a:6000,a:6000").find("a:6000 twice"), std::string::npos);
}

TEST(ServerList, AMalformedElementIsNamed) {
  EXPECT_EQ(ListRefused("a,b:0"), "invalid server address 'b:0': the port must be 1..65535");
  EXPECT_NE(ListRefused("a,http://b").find("'http://b'"), std::string::npos);
}

TEST(ServerAddress, ResolvesAnAddressWithoutAskingTheNetwork) {
  EXPECT_TRUE(ResolveHost(Parsed("127.0.0.1")).ok());
  EXPECT_TRUE(ResolveHost(Parsed("[::1]")).ok());
}

}  // namespace
}  // namespace taskq
