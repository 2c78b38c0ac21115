//! `congvan serve --dev` from an empty directory: it sets itself up, prints a working
//! copy-paste command, and what that command sends leaves sealed (OpenSSL verifies it).
//! Uses the fixed --dev ports (2587, 2465, 10025, 2525).

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_dev_works_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("banner.txt");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["serve", "--dev"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.path().join("log.txt")).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(child);
    let mut ready = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect("127.0.0.1:2587")
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap_or_default();
    assert!(ready, "serve --dev did not listen on 2587: {log}");
    let banner = std::fs::read_to_string(&out_path).unwrap();
    for needle in ["2587", "2465", "10025", "2525", "password:", "DEVELOPMENT"] {
        assert!(
            banner.contains(needle),
            "{needle} missing from the banner:\n{banner}"
        );
    }
    // Run the printed command exactly as a person would paste it.
    let cmd = banner
        .lines()
        .find(|l| l.trim_start().starts_with("python3 -c"))
        .expect("a python3 command")
        .trim();
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );
    let outbox = dir.path().join("congvan-dev/outbox");
    let files = common::wait_files(&outbox, 1, 15).await;
    assert_eq!(files.len(), 1, "{log}");
    let (ok, why) =
        common::openssl_verify(&files[0], &dir.path().join("congvan-dev/pki/dev-ca.pem"));
    assert!(ok, "the dev seal verifies: {why}");
    drop(guard);
}
