<?php
/**
 * Tests of PushStream\Client against a real server; run by run.php.  Each
 * test gets a TestContext and checks what subscribers receive through the
 * long-polling location /lp/CH, whose template is
 *   ~channel~|~id~|~event-id~|~event-type~|~text~ followed by "\n--\n".
 */

use PushStream\Client;

final class TestContext
{
    public string $url;

    public function __construct(string $url)
    {
        $this->url = $url;
    }

    public function client(array $options = []): Client
    {
        return new Client($this->url, $options);
    }

    /** A channel id nobody used before. */
    public function channel(string $prefix = 'php'): string
    {
        static $n = 0;
        return sprintf('%s_%d_%d_%s', $prefix, getmypid(), ++$n, substr(uniqid(), -6));
    }

    /** GET /lp/PATH; returns [status, body]. */
    public function subscribe(string $path, int $timeout = 10): array
    {
        $ch = curl_init($this->url . '/lp/' . $path);
        curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => $timeout]);
        $body = curl_exec($ch);
        $status = (int)curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        curl_close($ch);
        return [$status, (string)$body];
    }

    /** The stored messages of a channel as [channel, id, event-id, event-type, text] rows. */
    public function stored(string $channel, int $n = 10): array
    {
        [$status, $body] = $this->subscribe(rawurlencode($channel) . ".b$n");
        eq(200, $status, "subscribe $channel.b$n");
        $rows = [];
        foreach (explode("\n--\n", $body) as $part) {
            if ($part !== '') {
                $rows[] = explode('|', $part, 5);
            }
        }
        return $rows;
    }
}

function test_publish_one_channel(TestContext $t): void
{
    $ch = $t->channel();
    $info = $t->client()->publish($ch, 'Hello');
    eq($ch, $info['channel']);
    eq(1, $info['published_messages']);
    eq(1, $info['stored_messages']);
    eq(0, $info['subscribers']);
    eq([[$ch, '1', '', '', 'Hello']], $t->stored($ch));
}

function test_publish_many_channels_in_one_request(TestContext $t): void
{
    $a = $t->channel('a');
    $b = $t->channel('b');
    $ps = $t->client();
    $ps->publish($a, 'first on a');
    $infos = $ps->publish([$a, $b], 'to both');
    eq([$a, $b], array_keys($infos));
    eq(2, $infos[$a]['published_messages']);
    eq(1, $infos[$b]['published_messages']);
    eq([[$a, '1', '', '', 'first on a'], [$a, '2', '', '', 'to both']], $t->stored($a));
    eq([[$b, '1', '', '', 'to both']], $t->stored($b));
}

function test_event_id_and_type(TestContext $t): void
{
    $ch = $t->channel();
    $t->client()->publish($ch, 'with ids', '42', 'chat');
    eq([[$ch, '1', '42', 'chat', 'with ids']], $t->stored($ch));
    try {
        $t->client()->publish($ch, 'x', "bad\r\nInjected: 1");
        check(false, 'a header value with a line break was sent');
    } catch (InvalidArgumentException $e) {
    }
}

function test_any_bytes_arrive_unchanged(TestContext $t): void
{
    $ch = $t->channel();
    $texts = ["quotes \" ' and \\ backslash", "two\nlines\r\nand a tab\t", "utf-8: \u{00fc} \u{20ac} \u{1F600}",
        "nul \0 byte", str_repeat('0123456789', 5000)];
    $ps = $t->client();
    foreach ($texts as $text) {
        $ps->publish($ch, $text);
    }
    $got = array_column($t->stored($ch), 4);
    eq($texts, $got);
}

function test_publish_json(TestContext $t): void
{
    $ch = $t->channel();
    $data = ['from' => 'agent "Bob"', 'body' => "Hi </script>\n\u{00e9}", 'n' => 3];
    $t->client()->publishJson($ch, $data);
    $rows = $t->stored($ch);
    eq($data, json_decode($rows[0][4], true));
}

function test_channel_info(TestContext $t): void
{
    $ps = $t->client();
    $a = $t->channel('a');
    $missing = $t->channel('missing');
    eq(null, $ps->channelInfo($a));
    $ps->publish($a, 'one');
    $ps->publish($a, 'two');
    $info = $ps->channelInfo($a);
    eq($a, $info['channel']);
    eq(2, $info['published_messages']);
    eq(2, $info['stored_messages']);
    // several channels: only those that exist
    $infos = $ps->channelInfo([$a, $missing]);
    eq([$a], array_keys($infos));
    eq(null, $ps->channelInfo([$missing, $t->channel('missing')]));
}

function test_delete(TestContext $t): void
{
    $ps = $t->client();
    $ch = $t->channel();
    eq(false, $ps->delete($ch));
    $ps->publish($ch, 'soon gone');
    check($ps->delete($ch), 'delete of an existing channel');
    eq(null, $ps->channelInfo($ch));
    // a waiting subscriber gets the delete message
    $ch2 = $t->channel();
    $ps->publish($ch2, 'm');
    $mh = curl_multi_init();
    $sub = curl_init($t->url . '/lp/' . $ch2);
    curl_setopt_array($sub, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10]);
    curl_multi_add_handle($mh, $sub);
    $deadline = microtime(true) + 5;
    do {
        curl_multi_exec($mh, $running);
        curl_multi_select($mh, 0.05);
        $info = $ps->channelInfo($ch2);
    } while ($info['subscribers'] < 1 && microtime(true) < $deadline);
    eq(1, $info['subscribers'], 'the long-poll is waiting');
    check($ps->delete($ch2, 'Chat closed by the agent'), 'delete with a message');
    do {
        curl_multi_exec($mh, $running);
        curl_multi_select($mh, 0.05);
    } while ($running && microtime(true) < $deadline + 5);
    $body = curl_multi_getcontent($sub);
    curl_multi_remove_handle($mh, $sub);
    curl_multi_close($mh);
    eq("$ch2|-2|||Chat closed by the agent\n--\n", $body);
}

function test_stats(TestContext $t): void
{
    $ps = $t->client();
    $ch = $t->channel('statsprefix');
    $ps->publish($ch, 'counted');
    $summary = $ps->stats();
    foreach (['channels', 'subscribers', 'published_messages', 'stored_messages', 'by_worker'] as $k) {
        check(array_key_exists($k, $summary), "summary has $k");
    }
    check($summary['channels'] >= 1, 'at least one channel');
    $all = $ps->stats('ALL');
    check(in_array($ch, array_column($all['infos'], 'channel'), true), 'ALL lists the channel');
    $prefixed = $ps->stats('statsprefix_' . getmypid() . '*');
    check(in_array($ch, array_column($prefixed['infos'], 'channel'), true), 'prefix* lists the channel');
    foreach ($prefixed['infos'] as $info) {
        check(strpos($info['channel'], 'statsprefix_') === 0, 'prefix* lists only the prefix');
    }
}

function test_errors_carry_status_and_explain(TestContext $t): void
{
    $ps = $t->client();
    // the server's limit (PushStreamMaxChannelIdLength 40 in the test server)
    try {
        $ps->publish(str_repeat('x', 41), 'm');
        check(false, 'a 41-character id was accepted');
    } catch (PushStream\Exception $e) {
        eq(400, $e->getStatus());
        eq('Channel id is too large.', $e->getExplain());
    }
    // a normal publisher cannot delete
    try {
        $t->client(['publisher_path' => '/pub-normal'])->delete($t->channel());
        check(false, 'delete on a normal publisher');
    } catch (PushStream\Exception $e) {
        eq(405, $e->getStatus());
    }
    // nothing listening
    $sock = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int)substr(strrchr(stream_socket_get_name($sock, false), ':'), 1);
    fclose($sock);
    try {
        (new Client("http://127.0.0.1:$port"))->publish('x', 'm');
        check(false, 'publish without a server');
    } catch (PushStream\Exception $e) {
        eq(0, $e->getStatus());
    }
    // refused before any request
    foreach ([['ALL', 'm'], ['a/b', 'm'], ['', 'm'], ['x', '']] as [$ch, $msg]) {
        try {
            $ps->publish($ch, $msg);
            check(false, "publish('$ch', '$msg') was sent");
        } catch (InvalidArgumentException $e) {
        }
    }
}

function test_channel_info_on_publish_off(TestContext $t): void
{
    $ch = $t->channel();
    eq([], $t->client(['publisher_path' => '/pub-quiet'])->publish($ch, 'quiet'));
    eq([[$ch, '1', '', '', 'quiet']], $t->stored($ch));
}

function test_connection_is_reused(TestContext $t): void
{
    $ps = $t->client();
    $ch = $t->channel();
    $ps->publish($ch, '1');
    $ps->publish($ch, '2');
    $ps->channelInfo($ch);
    // curl reports how many new connections each transfer needed
    $r = new ReflectionProperty(Client::class, 'curl');
    $r->setAccessible(true);
    eq(0, curl_getinfo($r->getValue($ps), CURLINFO_NUM_CONNECTS), 'new connections for the 3rd call');
}

function test_channel_ids_are_url_encoded(TestContext $t): void
{
    $ch = $t->channel() . ' sp&ce?=#';
    $ps = $t->client();
    eq($ch, $ps->publish($ch, 'encoded')['channel']);
    eq($ch, $ps->channelInfo($ch)['channel']);
    eq([[$ch, '1', '', '', 'encoded']], $t->stored($ch));
}
