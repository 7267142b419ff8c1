<?php
/**
 * publish.php - publish a message from the command line or from a PHP app.
 *
 *   php publish.php [--url=http://127.0.0.1:8060] [--event-id=ID] [--event-type=TYPE]
 *                   [--json] CHANNEL[,CHANNEL...] MESSAGE|-
 *
 *   php publish.php room1 'Hello'
 *   php publish.php --event-id=42 --event-type=chat room1,room2 'Hi both'
 *   echo '{"from":"agent"}' | php publish.php room1 -
 *   php publish.php --delete room1            # delete the channel (admin publisher)
 *   php publish.php --info room1              # channel info
 *   php publish.php --stats                   # statistics summary
 *
 * Prints the server's answer as JSON; exit status 0 on success, 1 on an HTTP
 * or connection error (message on stderr), 2 on wrong usage.
 *
 * In an application the same is three lines:
 *
 *   require __DIR__ . '/src/PushStream.php';
 *   $ps = new PushStream\Client('http://127.0.0.1:8060');
 *   $ps->publish('room1', 'Hello', '42', 'chat');
 */

require __DIR__ . '/src/PushStream.php';

function usage(string $why = ''): void
{
    if ($why !== '') {
        fwrite(STDERR, "publish.php: $why\n");
    }
    fwrite(STDERR, "usage: php publish.php [--url=URL] [--event-id=ID] [--event-type=TYPE] CHANNEL[,CHANNEL...] MESSAGE|-\n"
        . "       php publish.php [--url=URL] --delete|--info CHANNEL[,CHANNEL...]\n"
        . "       php publish.php [--url=URL] --stats [CHANNELS|ALL|prefix*]\n");
    exit(2);
}

$url = getenv('PUSHSTREAM_URL') ?: 'http://127.0.0.1:8060';
$eventId = $eventType = null;
$mode = 'publish';
$args = [];
foreach (array_slice($argv, 1) as $a) {
    if (preg_match('/^--url=(.+)$/', $a, $m)) {
        $url = $m[1];
    } elseif (preg_match('/^--event-id=(.*)$/', $a, $m)) {
        $eventId = $m[1];
    } elseif (preg_match('/^--event-type=(.*)$/', $a, $m)) {
        $eventType = $m[1];
    } elseif (in_array($a, ['--delete', '--info', '--stats'], true)) {
        $mode = substr($a, 2);
    } elseif ($a === '--help' || $a === '-h') {
        usage();
    } elseif ($a !== '-' && strncmp($a, '--', 2) === 0) {
        usage("unknown option $a");
    } else {
        $args[] = $a;
    }
}

$ps = new PushStream\Client($url);
try {
    switch ($mode) {
        case 'publish':
            if (count($args) !== 2) {
                usage('CHANNEL and MESSAGE are needed');
            }
            $message = $args[1] === '-' ? stream_get_contents(STDIN) : $args[1];
            $channels = explode(',', $args[0]);
            $out = $ps->publish(count($channels) > 1 ? $channels : $channels[0], $message, $eventId, $eventType);
            break;
        case 'delete':
        case 'info':
            if (count($args) !== 1) {
                usage('one CHANNEL[,CHANNEL...] is needed');
            }
            $channels = explode(',', $args[0]);
            $channels = count($channels) > 1 ? $channels : $channels[0];
            $out = $mode === 'delete' ? ['deleted' => $ps->delete($channels)] : $ps->channelInfo($channels);
            if ($out === null) {
                fwrite(STDERR, "publish.php: no such channel\n");
                exit(1);
            }
            break;
        default:
            $out = $ps->stats($args ? explode(',', $args[0]) : null);
    }
} catch (PushStream\Exception $e) {
    fwrite(STDERR, 'publish.php: ' . $e->getMessage() . "\n");
    exit(1);
} catch (InvalidArgumentException $e) {
    usage($e->getMessage());
}
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
