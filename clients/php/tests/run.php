<?php
/**
 * Runs the tests of clients/php against a running server (no PHPUnit needed).
 *
 *   PUSHSTREAM_URL=http://127.0.0.1:8060 php clients/php/tests/run.php [--list] [NAME...]
 *
 * The server needs the locations of test/modules/pushstream/test_clients_php.py
 * (/pub admin, /pub-normal, /pub-quiet, /channels-stats, /lp/CH long-polling).
 * Prints "ok NAME" or "FAIL NAME: why" per test and exits 1 if any failed.
 */

require __DIR__ . '/../src/PushStream.php';
require __DIR__ . '/ClientTest.php';

final class AssertionFailed extends Exception
{
}

function check(bool $cond, string $what): void
{
    if (!$cond) {
        throw new AssertionFailed($what);
    }
}

function eq($want, $got, string $what = ''): void
{
    if ($want !== $got) {
        throw new AssertionFailed(($what !== '' ? "$what: " : '') . 'wanted ' . var_export($want, true)
            . ', got ' . var_export($got, true));
    }
}

/** @return string[] the test functions of ClientTest.php, in file order */
function test_names(): array
{
    preg_match_all('/^function (test_\w+)\(/m', file_get_contents(__DIR__ . '/ClientTest.php'), $m);
    return $m[1];
}

$names = test_names();
$args = array_slice($argv, 1);
if ($args === ['--list']) {
    echo implode("\n", $names), "\n";
    exit(0);
}
if ($args) {
    $unknown = array_diff($args, $names);
    if ($unknown) {
        fwrite(STDERR, 'unknown tests: ' . implode(', ', $unknown) . "\n");
        exit(2);
    }
    $names = $args;
}
$url = getenv('PUSHSTREAM_URL');
if (!$url) {
    fwrite(STDERR, "set PUSHSTREAM_URL (the server of test/modules/pushstream/test_clients_php.py)\n");
    exit(2);
}
$ctx = new TestContext(rtrim($url, '/'));
$failed = 0;
foreach ($names as $name) {
    try {
        $name($ctx);
        echo "ok $name\n";
    } catch (Throwable $e) {
        $failed++;
        echo "FAIL $name: " . get_class($e) . ': ' . $e->getMessage() . ' (' . basename($e->getFile())
            . ':' . $e->getLine() . ")\n";
    }
}
echo count($names) - $failed, " passed, $failed failed\n";
exit($failed ? 1 : 0);
