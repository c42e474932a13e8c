<?php
// An FTPS client on PHP's ext/ftp (ftp_ssl_connect: explicit TLS, PROT P,
// OpenSSL), driven by tests/integration/test_real_clients.py.
//
//   php ftps_client.php PORT USER PASSWORD REMOTE_DIR GET_REMOTE GET_LOCAL PUT_LOCAL PUT_REMOTE
//
// Lists REMOTE_DIR (NLST and LIST), downloads GET_REMOTE to GET_LOCAL, uploads
// PUT_LOCAL as PUT_REMOTE and lists REMOTE_DIR again. Every warning, notice or
// deprecation PHP raises is printed as "PHP DIAGNOSTIC: ..." and makes the
// exit status 1, as does any call that fails (ftp_* returning false).

error_reporting(E_ALL);
$diagnostics = 0;
set_error_handler(function ($errno, $errstr, $errfile, $errline) {
    global $diagnostics;
    $diagnostics++;
    fwrite(STDERR, "PHP DIAGNOSTIC: [$errno] $errstr (line $errline)\n");
    return true;
});

$failures = 0;
function check($what, $result)
{
    global $failures;
    if ($result === false) {
        $failures++;
        fwrite(STDERR, "FAILED: $what\n");
    }
    return $result;
}

if ($argc != 9) {
    fwrite(STDERR, "usage: php ftps_client.php PORT USER PASSWORD REMOTE_DIR GET_REMOTE GET_LOCAL PUT_LOCAL PUT_REMOTE\n");
    exit(2);
}
list(, $port, $user, $password, $dir, $get_remote, $get_local, $put_local, $put_remote) = $argv;

echo "VERSION php=" . PHP_VERSION . " openssl=" . OPENSSL_VERSION_TEXT . "\n";

$ftp = ftp_ssl_connect('127.0.0.1', (int)$port, 10);
if ($ftp === false) {
    fwrite(STDERR, "FAILED: ftp_ssl_connect\n");
    exit(1);
}
if (!check('ftp_login', ftp_login($ftp, $user, $password))) {
    exit(1);
}
check('ftp_pasv', ftp_pasv($ftp, true));

$names = check('ftp_nlist', ftp_nlist($ftp, $dir));
echo "NLIST " . json_encode($names) . "\n";
$lines = check('ftp_rawlist', ftp_rawlist($ftp, $dir));
echo "LIST " . json_encode($lines) . "\n";
check('ftp_get', ftp_get($ftp, $get_local, $get_remote, FTP_BINARY));
check('ftp_put', ftp_put($ftp, $put_remote, $put_local, FTP_BINARY));
echo "SIZE " . ftp_size($ftp, $put_remote) . "\n";
$after = check('ftp_nlist after upload', ftp_nlist($ftp, $dir));
echo "NLIST " . json_encode($after) . "\n";
check('ftp_close', ftp_close($ftp));

echo "DONE failures=$failures diagnostics=$diagnostics\n";
exit($failures + $diagnostics > 0 ? 1 : 0);
