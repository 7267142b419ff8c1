<?php
/**
 * PushStream\Client - publish to mod_pushstream (or nginx-push-stream-module)
 * from PHP with php-curl.  One file, no dependencies:
 *
 *     require 'clients/php/src/PushStream.php';
 *     $ps = new PushStream\Client('http://127.0.0.1:8060');
 *     $ps->publish('room1', 'Hello');                          // one channel
 *     $ps->publish(['room1', 'room2'], 'Hi all', '42', 'chat'); // several, Event-Id, Event-Type
 *     $ps->publishJson('room1', ['from' => 'agent', 'body' => 'Hi']);
 *     $ps->channelInfo('room1');  // ['channel' => 'room1', 'published_messages' => 2, ...] or null
 *     $ps->delete('room1', 'Chat closed');                      // true, or false if it did not exist
 *     $ps->stats();               // the statistics location's summary
 *
 * Tokens for PushStreamAuth (signed channel grants, a compact JWS/JWT):
 *
 *     $jwt = PushStream\Token::forChannels($secret, ['user42*'], [], 3600, ['kid' => 'k1']);
 *     setcookie('pushstream_token', $jwt, ['httponly' => true, 'samesite' => 'Strict']);
 *     $ps = new PushStream\Client('http://127.0.0.1:8060',
 *         ['token' => PushStream\Token::forChannels($secret, [], ['room*'], 60)]);
 *
 * Every call raises PushStream\Exception on an HTTP error or a failed
 * connection; its getStatus() and getExplain() give the status code and the
 * X-Nginx-PushStream-Explain header (e.g. 403 "Number of channels were exceeded.").
 * One curl handle is kept, so consecutive calls reuse the connection.
 */

namespace PushStream;

class Exception extends \RuntimeException
{
    private int $status;
    private ?string $explain;

    public function __construct(string $message, int $status = 0, ?string $explain = null)
    {
        parent::__construct($message, $status);
        $this->status = $status;
        $this->explain = $explain;
    }

    /** HTTP status of the answer; 0 when there was none (connection failed). */
    public function getStatus(): int
    {
        return $this->status;
    }

    /** The X-Nginx-PushStream-Explain header, if the server sent one. */
    public function getExplain(): ?string
    {
        return $this->explain;
    }
}

class Client
{
    private string $baseUrl;
    private array $options;
    /** @var \CurlHandle|resource|null */
    private $curl = null;

    /**
     * @param string $baseUrl where the publisher listens, e.g. http://127.0.0.1:8060
     * @param array  $options publisher_path ('/pub'), stats_path ('/channels-stats'),
     *                        channel_arg ('id': the query argument of PushStreamChannelsPath),
     *                        timeout (5 s), connect_timeout (2 s),
     *                        headers (extra request headers, ['Name: value', ...]),
     *                        token (a PushStreamAuth token: sent as Authorization: Bearer),
     *                        curl (extra CURLOPT_* => value)
     */
    public function __construct(string $baseUrl = 'http://127.0.0.1:8060', array $options = [])
    {
        if (!\function_exists('curl_init')) {
            throw new \LogicException('PushStream\Client needs php-curl (apt-get install php-curl)');
        }
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->options = $options + [
            'publisher_path' => '/pub',
            'stats_path' => '/channels-stats',
            'channel_arg' => 'id',
            'timeout' => 5.0,
            'connect_timeout' => 2.0,
            'headers' => [],
            'curl' => [],
        ];
        if (isset($options['token'])) {
            $this->options['headers'][] = 'Authorization: Bearer ' . $options['token'];
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /** Closes the kept connection (the next call opens a new one). */
    public function close(): void
    {
        if ($this->curl !== null) {
            curl_close($this->curl);
            $this->curl = null;
        }
    }

    /**
     * Publishes $message to one channel or to several at once.
     *
     * @param string|string[] $channels
     * @param string|null     $eventId   sent as Event-Id (EventSource "id:", ~event-id~, replay by Last-Event-Id)
     * @param string|null     $eventType sent as Event-Type (EventSource "event:", ~event-type~)
     * @return array for one channel its info (channel, published_messages, stored_messages,
     *               subscribers); for several, channel => info; [] when the location has
     *               PushStreamChannelInfoOnPublish off
     */
    public function publish($channels, string $message, ?string $eventId = null, ?string $eventType = null): array
    {
        if ($message === '') {
            throw new \InvalidArgumentException('an empty message cannot be published');
        }
        $headers = ['Content-Type: text/plain; charset=utf-8'];
        if ($eventId !== null) {
            $headers[] = 'Event-Id: ' . self::headerValue($eventId);
        }
        if ($eventType !== null) {
            $headers[] = 'Event-Type: ' . self::headerValue($eventType);
        }
        $r = $this->request('POST', $this->publisherUrl($channels), $message, $headers);
        if ($r['status'] !== 200) {
            throw self::error('publish', $r);
        }
        if (trim($r['body']) === '') {
            return [];
        }
        return $this->infoResult($channels, self::decode($r['body']));
    }

    /** publish() of json_encode($data) (for a JSON message template with ~text~). */
    public function publishJson($channels, $data, ?string $eventId = null, ?string $eventType = null): array
    {
        $json = json_encode($data, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
        return $this->publish($channels, $json, $eventId, $eventType);
    }

    /**
     * Channel info; null when none of the channels exists.  For several channels,
     * channel => info of those that exist.
     *
     * @param string|string[] $channels
     */
    public function channelInfo($channels): ?array
    {
        $r = $this->request('GET', $this->publisherUrl($channels), null, ['Accept: application/json']);
        if ($r['status'] === 404) {
            return null;
        }
        if ($r['status'] !== 200) {
            throw self::error('channel info', $r);
        }
        return $this->infoResult($channels, self::decode($r['body']));
    }

    /**
     * Deletes channels (needs PushStreamPublisher admin).  Their subscribers get
     * $message (or PushStreamChannelDeletedMessageText) and are closed.
     *
     * @param string|string[] $channels
     * @return bool true if at least one channel was deleted, false if none existed
     */
    public function delete($channels, ?string $message = null): bool
    {
        $r = $this->request('DELETE', $this->publisherUrl($channels), $message, []);
        if ($r['status'] === 404) {
            return false;
        }
        if ($r['status'] !== 200) {
            throw self::error('delete', $r);
        }
        return true;
    }

    /**
     * The statistics location (PushStreamChannelsStatistics): with no argument
     * the summary (channels, subscribers, published_messages, by_worker, ...);
     * 'ALL' or 'prefix*' or channel ids: their infos.
     *
     * @param string|string[]|null $channels
     */
    public function stats($channels = null): array
    {
        $url = $this->baseUrl . $this->options['stats_path'];
        if ($channels !== null) {
            $url .= '?' . $this->options['channel_arg'] . '=' . self::channelPath($channels, true);
        }
        $r = $this->request('GET', $url, null, ['Accept: application/json']);
        if ($r['status'] !== 200) {
            throw self::error('stats', $r);
        }
        return self::decode($r['body']);
    }

    // ---------------------------------------------------------------- internals

    private function publisherUrl($channels): string
    {
        return $this->baseUrl . $this->options['publisher_path'] . '?'
            . $this->options['channel_arg'] . '=' . self::channelPath($channels, false);
    }

    private static function channelPath($channels, bool $patterns): string
    {
        $list = \is_array($channels) ? array_values($channels) : [$channels];
        if (!$list) {
            throw new \InvalidArgumentException('no channel given');
        }
        $parts = [];
        foreach ($list as $ch) {
            $ch = (string)$ch;
            if ($ch === '' || strpos($ch, '/') !== false) {
                throw new \InvalidArgumentException("invalid channel id '$ch' (empty or contains '/')");
            }
            if (!$patterns && ($ch === 'ALL' || strpos($ch, '*') !== false)) {
                throw new \InvalidArgumentException("'$ch' is a statistics pattern, not a channel id");
            }
            // '*' stays literal so that 'prefix*' works for stats
            $parts[] = str_replace('%2A', '*', rawurlencode($ch));
        }
        return implode('/', $parts);
    }

    /** Single-channel info for one channel, channel => info for several. */
    private function infoResult($channels, array $data): array
    {
        $infos = isset($data['infos']) ? $data['infos'] : [$data];
        if (!\is_array($channels)) {
            return $infos[0] ?? [];
        }
        $out = [];
        foreach ($infos as $info) {
            $out[$info['channel']] = $info;
        }
        return $out;
    }

    private static function headerValue(string $v): string
    {
        if (preg_match('/[\r\n]/', $v)) {
            throw new \InvalidArgumentException('header values cannot contain line breaks');
        }
        return $v;
    }

    private static function decode(string $body): array
    {
        $data = json_decode($body, true);
        if (!\is_array($data)) {
            throw new Exception('the server answered something that is not JSON: ' . substr($body, 0, 200), 200);
        }
        return $data;
    }

    private static function error(string $what, array $r): Exception
    {
        $explain = $r['headers']['x-nginx-pushstream-explain'] ?? null;
        $msg = "$what failed: HTTP {$r['status']}" . ($explain !== null ? " ($explain)" : '');
        return new Exception($msg, $r['status'], $explain);
    }

    /** @return array{status:int, headers:array<string,string>, body:string} */
    private function request(string $method, string $url, ?string $body, array $headers): array
    {
        if ($this->curl === null) {
            $this->curl = curl_init();
        } else {
            curl_reset($this->curl);
        }
        $respHeaders = [];
        $opts = [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => (int)($this->options['timeout'] * 1000),
            CURLOPT_CONNECTTIMEOUT_MS => (int)($this->options['connect_timeout'] * 1000),
            CURLOPT_HTTPHEADER => array_merge($headers, ['Expect:'], $this->options['headers']),
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$respHeaders): int {
                $p = strpos($line, ':');
                if ($p !== false) {
                    $respHeaders[strtolower(trim(substr($line, 0, $p)))] = trim(substr($line, $p + 1));
                } elseif (preg_match('#^HTTP/#', $line)) {
                    $respHeaders = [];          // a new answer (after a 100 Continue)
                }
                return \strlen($line);
            },
        ];
        if ($body !== null) {
            $opts[CURLOPT_POSTFIELDS] = $body;
        }
        curl_setopt_array($this->curl, $this->options['curl'] + $opts);
        $out = curl_exec($this->curl);
        if ($out === false) {
            $err = curl_error($this->curl);
            $this->close();
            throw new Exception("$method $url: $err", 0);
        }
        return [
            'status' => (int)curl_getinfo($this->curl, CURLINFO_RESPONSE_CODE),
            'headers' => $respHeaders,
            'body' => (string)$out,
        ];
    }
}

/**
 * Tokens checked by PushStreamAuth: a compact JWS whose claims grant channels,
 *   {"exp": ..., "pushstream": {"subscribe": ["id", "prefix*"], "publish": [...]}}
 * signed with the key of a PushStreamAuthKey line (HS256/HS384/HS512 with its
 * secret; RS256/ES256 with the PEM private key of the configured public key).
 */
final class Token
{
    /**
     * @param string   $key       HS*: the secret (the bytes of the key file, without
     *                            its trailing newline); RS256/ES256: a PEM private key
     * @param string[] $subscribe channel ids (or "prefix*") the holder may subscribe to
     * @param string[] $publish   channel ids (or "prefix*") the holder may publish to
     * @param int      $ttl       seconds until "exp"
     * @param array    $options   alg ('HS256'), kid, aud, iss, sub, nbf (seconds from
     *                            now), now (time()), claims (more claims, merged)
     */
    public static function forChannels(string $key, array $subscribe, array $publish = [],
                                       int $ttl = 3600, array $options = []): string
    {
        $now = $options['now'] ?? time();
        $claims = ['exp' => $now + $ttl, 'iat' => $now,
                   'pushstream' => ['subscribe' => array_values(array_map('strval', $subscribe)),
                                    'publish' => array_values(array_map('strval', $publish))]];
        foreach (['aud', 'iss', 'sub'] as $c) {
            if (isset($options[$c])) {
                $claims[$c] = $options[$c];
            }
        }
        if (isset($options['nbf'])) {
            $claims['nbf'] = $now + (int)$options['nbf'];
        }
        return self::sign($key, ($options['claims'] ?? []) + $claims, $options['alg'] ?? 'HS256',
                          $options['kid'] ?? null);
    }

    /** Signs any claims as a compact JWS. */
    public static function sign(string $key, array $claims, string $alg = 'HS256', ?string $kid = null): string
    {
        $header = ['alg' => $alg, 'typ' => 'JWT'];
        if ($kid !== null) {
            $header['kid'] = $kid;
        }
        $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;
        $input = self::b64u(json_encode($header, $flags)) . '.' . self::b64u(json_encode($claims, $flags));
        return $input . '.' . self::b64u(self::signature($key, $input, $alg));
    }

    public static function b64u(string $data): string
    {
        return rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
    }

    private static function signature(string $key, string $input, string $alg): string
    {
        $hs = ['HS256' => 'sha256', 'HS384' => 'sha384', 'HS512' => 'sha512'];
        if (isset($hs[$alg])) {
            return hash_hmac($hs[$alg], $input, $key, true);
        }
        if ($alg !== 'RS256' && $alg !== 'ES256') {
            throw new \InvalidArgumentException("unsupported algorithm $alg (HS256, HS384, HS512, RS256, ES256)");
        }
        if (!\function_exists('openssl_sign')) {
            throw new \LogicException("$alg tokens need PHP's openssl extension");
        }
        $pk = openssl_pkey_get_private($key);
        if ($pk === false || !openssl_sign($input, $sig, $pk, OPENSSL_ALGO_SHA256)) {
            throw new \InvalidArgumentException("$alg: not a usable PEM private key");
        }
        return $alg === 'ES256' ? self::derToJose($sig) : $sig;
    }

    /** DER ECDSA signature (SEQUENCE of two INTEGERs) -> JOSE r||s (32 bytes each). */
    private static function derToJose(string $der): string
    {
        $i = \ord($der[1]) & 0x80 ? 2 + (\ord($der[1]) & 0x7f) : 2;
        $out = '';
        for ($k = 0; $k < 2; $k++) {
            $n = \ord($der[$i + 1]);
            $v = ltrim(substr($der, $i + 2, $n), "\0");
            $out .= str_pad($v, 32, "\0", STR_PAD_LEFT);
            $i += 2 + $n;
        }
        return $out;
    }
}
