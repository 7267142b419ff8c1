"""Configtest errors of the issue-4 directives (protocol 1a) and escaped
template tokens through a real subscriber."""
import http.client
import json

from pyhttpd.conf import conf
from .test_config import assert_syntax_error, assert_post_read_error


def test_padding_pattern_errors(configtest):
    line = 'PushStreamPaddingByUserAgent "user_agent,as,df"'
    rc, out = configtest(conf(sub=line))
    assert_syntax_error(rc, out, "padding pattern not match the value user_agent,as,df", line)
    line = 'PushStreamPaddingByUserAgent "ok,1,2:bad"'
    rc, out = configtest(conf(sub=line))
    assert_syntax_error(rc, out, "padding pattern not match the value ok,1,2:bad", line)


def test_header_template_file(configtest, tmp_path):
    line = 'PushStreamHeaderTemplateFile "/unexistent/path"'
    rc, out = configtest(conf(sub=line))
    assert_syntax_error(rc, out, 'unable to open file "/unexistent/path" for header template',
                        line)
    f = tmp_path / "header.html"
    f.write_text("<html>")
    both = [f'PushStreamHeaderTemplateFile "{f}"', 'PushStreamHeaderTemplate "x"']
    rc, out = configtest(conf(sub=both))
    assert_syntax_error(rc, out, "\"PushStreamHeaderTemplateFile\" directive is duplicate or "
                        "template set by 'PushStreamHeaderTemplate'", both[1])
    twice = ['PushStreamHeaderTemplate "x"', 'PushStreamHeaderTemplate "y"']
    rc, out = configtest(conf(sub=twice))
    assert_syntax_error(rc, out, '"PushStreamHeaderTemplate" directive is duplicate', twice[1])


def test_wildcard_settings(configtest):
    line = "PushStreamWildcardChannelMaxQtd 3"
    rc, out = configtest(conf(sub=line))
    assert_post_read_error(rc, out, "cannot set wildcard channel max qtd if "
                           "PushStreamWildcardChannelPrefix is not set or blank.", [line])
    rc, out = configtest(conf(server="PushStreamWildcardChannelPrefix bd_\n"
                                     "PushStreamMaxNumberOfWildcardChannels 2", sub=line))
    assert_post_read_error(rc, out, "max number of wildcard channels cannot be smaller than "
                           "value in PushStreamWildcardChannelMaxQtd.", [line])
    rc, out = configtest(conf(server="PushStreamMaxNumberOfWildcardChannels 0"))
    assert rc != 0 and "PushStreamMaxNumberOfWildcardChannels cannot be zero." in out
    rc, out = configtest(conf(sub="PushStreamWildcardChannelMaxQtd 0"))
    assert rc != 0 and "PushStreamWildcardChannelMaxQtd cannot be zero." in out


def test_escaped_tokens_make_valid_json(httpd):
    tpl = r'PushStreamMessageTemplate "{\"id\":~id~,\"text\":\"~text|json~\",\"ch\":\"~channel|json~\"}"'
    srv = httpd(conf(lp=tpl))
    text = 'quote " backslash \\ newline \n tab \t <script>'
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("POST", "/pub?id=j%22son", body=text.encode())
    r = c.getresponse()
    r.read()
    assert r.status == 200
    c.request("GET", "/lp/j%22son.b1")
    r = c.getresponse()
    doc = json.loads(r.read())
    assert doc == {"id": 1, "text": text, "ch": 'j"son'}
