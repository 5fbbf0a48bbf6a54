"""Server addresses: the forms task_worker takes, and its sentences for the
others (client/endpoint.cc), so a student's typo is told in the same words
from Python and from the C++ worker; and the lists of masters a Worker
takes, as task_worker --server A,B does."""
import pytest

import taskq
from taskq.session import parse_server, parse_server_list


@pytest.mark.parametrize("given, endpoint", [
    ("127.0.0.1", "tcp://127.0.0.1:5000"),
    ("127.0.0.1:6000", "tcp://127.0.0.1:6000"),
    ("tcp://127.0.0.1:6000", "tcp://127.0.0.1:6000"),
    ("[::1]:6000", "tcp://[::1]:6000"),
    (("", 6000), "tcp://127.0.0.1:6000"),  # BaseManager's address tuple
])
def test_accepted_forms(given, endpoint):
    assert parse_server(given)[0] == endpoint


@pytest.mark.parametrize("given, words", [
    ("bad host!", "a host name has only letters, digits, '-' and '.'"),
    ("http://127.0.0.1:5000", "a taskq master is reached over tcp"),
    (":5000", "the host is empty"),
    ("127.0.0.1:99999", "the port must be 1..65535"),
    ("a:b:c", "write IPv6 addresses as [ADDR]:PORT"),
    ("", "it is empty"),
    ("no-such-host.invalid", "cannot resolve no-such-host.invalid"),
])
def test_refused_forms_say_why(given, words):
    with pytest.raises(ValueError) as e:
        parse_server(given)
    assert words in str(e.value)


@pytest.mark.parametrize("given, endpoints", [
    ("127.0.0.1:6000", ["tcp://127.0.0.1:6000"]),  # no comma: exactly parse_server
    ("127.0.0.1:6000,127.0.0.1:6001", ["tcp://127.0.0.1:6000", "tcp://127.0.0.1:6001"]),
    (" 127.0.0.1:6000 ,\ttcp://127.0.0.1 , [::1]:6000",
     ["tcp://127.0.0.1:6000", "tcp://127.0.0.1:5000", "tcp://[::1]:6000"]),
])
def test_a_list_of_masters_for_a_worker(given, endpoints):
    assert [e for e, _ in parse_server_list(given)] == endpoints


@pytest.mark.parametrize("given, words", [
    # task_worker's sentences (client/endpoint.cc ParseServerList)
    ("127.0.0.1,,127.0.0.1:1", "invalid server list '127.0.0.1,,127.0.0.1:1': master 2 is "
                               "empty; give HOST[:PORT],HOST[:PORT]... with no empty element"),
    ("127.0.0.1:1,", "master 2 is empty"),
    (",127.0.0.1:1", "master 1 is empty"),
    ("127.0.0.1:1, ,127.0.0.1:2", "master 2 is empty"),
    ("127.0.0.1:1,127.0.0.1:1", "it names 127.0.0.1:1 twice; give each master once"),
    ("LocalHost,localhost:5000", "it names localhost:5000 twice"),
    ("127.0.0.1,bad host!", "invalid server address 'bad host!': a host name has only"),
    ("no-such-host.invalid,,127.0.0.1", "master 2 is empty"),  # read before looked up
    ("127.0.0.1,no-such-host.invalid", "cannot resolve no-such-host.invalid"),
])
def test_a_bad_list_says_why(given, words):
    with pytest.raises(ValueError) as e:
        parse_server_list(given)
    assert words in str(e.value)


def test_a_bad_list_stops_a_worker_and_a_client_refuses_a_list():
    with pytest.raises(ValueError, match="master 2 is empty"):
        taskq.Worker("127.0.0.1,,127.0.0.1:1", b"abc").run()
    # A client's puts, ids and outcomes live on one master: it takes one.
    with pytest.raises(ValueError, match=r"a client connects to one master \(only taskq.Worker "
                                         r"takes a comma-separated list of masters\)"):
        taskq.connect("127.0.0.1:1,127.0.0.1:2", b"abc", timeout=1)
