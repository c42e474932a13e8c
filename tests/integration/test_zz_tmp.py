import subprocess, os
from ftpsd_testlib import USER, PASSWORD

def test_rclone(server, tmp_path):
    srv = server()
    src = tmp_path / "src"; src.mkdir()
    for i in range(200):
        (src / ("f%03d.bin" % i)).write_bytes(os.urandom(1000 + i * 37))
    ob = subprocess.run(["rclone", "obscure", PASSWORD], capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, RCLONE_CONFIG_R_TYPE="ftp", RCLONE_CONFIG_R_HOST="127.0.0.1",
               RCLONE_CONFIG_R_PORT=str(srv.port), RCLONE_CONFIG_R_USER=USER, RCLONE_CONFIG_R_PASS=ob,
               RCLONE_CONFIG_R_EXPLICIT_TLS="true", RCLONE_CONFIG_R_NO_CHECK_CERTIFICATE="true",
               RCLONE_CONFIG=str(tmp_path / "none.conf"))
    for run in range(5):
        for cmd in (["sync", str(src), "r:dst%d" % run], ["check", str(src), "r:dst%d" % run], ["copy", "r:dst%d" % run, str(tmp_path / ("back%d" % run))]):
            p = subprocess.run(["rclone", *cmd], env=env, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (cmd, p.stderr[-3000:], srv.log[-3000:])
