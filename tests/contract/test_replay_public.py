"""replay_public.py against a stand-in server on loopback: it sends exactly td-js-sdk's captured
request with the simulator's key, token and an Origin, passes on 200 and fails otherwise."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import replay_public as rp

CAPTURED = json.loads(rp.DEFAULT_REQUEST.read_text())


@pytest.fixture
def server():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        answer = (200, b'{"offers": {"premium_users": {"attributes": {}}}}')

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.command, self.path, self.headers, body.decode()))  # names case-insensitive
            status, text = Handler.answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", seen, Handler
    srv.shutdown()


def test_the_capture_is_what_td_js_sdk_sends():
    assert CAPTURED["sdk"] == "td-js-sdk 4.4.3"
    assert (CAPTURED["method"], CAPTURED["path"]) == ("POST", "/public/rt_events/web_personalization")
    assert set(CAPTURED["headers"]) == {"Content-Type", "Authorization", "WP13n-Token"}
    assert CAPTURED["headers"]["Content-Type"] == "application/vnd.treasuredata.v1+json"
    body = json.loads(CAPTURED["body"])
    assert "time" not in body and "uuid" not in body  # the SDK sends the caller's data unchanged


def test_it_sends_the_captured_request_with_the_sims_credentials(server):
    url, seen, _ = server
    assert rp.main([url, "--key", "1/simkey", "--token", "1/2/ffff", "--origin", "http://localhost:9"]) == 0
    [(method, path, headers, body)] = seen
    assert (method, path, body) == ("POST", CAPTURED["path"], CAPTURED["body"])
    assert headers["Authorization"] == "TD1 1/simkey"
    assert headers["WP13n-Token"] == "1/2/ffff"
    assert headers["Origin"] == "http://localhost:9"
    assert headers["Content-Type"] == "application/vnd.treasuredata.v1+json"


def test_the_default_origin_is_the_captured_pages(server):
    url, seen, _ = server
    rp.replay(url, "k", "t")
    assert seen[0][2]["Origin"] == "https://shop.example.com"


@pytest.mark.parametrize("answer", [(400, b'{"code": 3007, "message": "Invalid or missing Origin"}'),
                                    (200, b"[1, 2]")])
def test_it_fails_when_the_sim_does_not_accept(server, answer):
    url, _, handler = server
    handler.answer = answer
    assert rp.main([url, "--key", "k", "--token", "t"]) == 1


def test_it_never_contacts_a_non_loopback_address():
    with pytest.raises(SystemExit, match="not a loopback address"):
        rp.replay("http://192.0.2.1:8080", "k", "t")
