"""Server addresses: the forms task_worker takes, and its sentences for the
others (client/endpoint.cc), so a student's typo is told in the same words
from Python and from the C++ worker."""
import pytest

from taskq.session import parse_server


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
