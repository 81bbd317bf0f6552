//! Watching the queue with IDLE, against the real Dovecot.
//!
//! The watcher talks plain IMAP through `IdleSpy`, a proxy that sees
//! Dovecot's `+ idling`, so that a test acts once the watcher idles
//! instead of sleeping and hoping.

use std::time::{Duration, Instant};

use mailscribe_mail::{ConnectionConfig, QueueWatcher, Security, Session, WatchEvent};
use mailscribe_testkit::{Dovecot, QUEUE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{config, message};

/// Long enough that a test which waited it out would be obvious.
const LONG: Duration = Duration::from_secs(60);
/// How long a test gives the watcher to react; far below `LONG`.
const PROMPT: Duration = Duration::from_secs(20);

/// A loopback proxy for one plain IMAP connection that counts the times
/// the server answered IDLE (`+ idling`), and can cut the connection.
struct IdleSpy {
    port: u16,
    n_idles: watch::Receiver<usize>,
    relay: JoinHandle<()>,
}

impl IdleSpy {
    async fn start(target: u16) -> IdleSpy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind spy");
        let port = listener.local_addr().expect("spy address").port();
        let (n_idles_tx, n_idles) = watch::channel(0);
        let relay = tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let upstream = async {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            };
            let downstream = async {
                let mut transcript = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n_read = match server_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n_read) => n_read,
                    };
                    if client_write.write_all(&chunk[..n_read]).await.is_err() {
                        break;
                    }
                    transcript.extend_from_slice(&chunk[..n_read]);
                    let marker = b"\r\n+ idling";
                    let _ = n_idles_tx.send(
                        transcript
                            .windows(marker.len())
                            .filter(|w| w == marker)
                            .count(),
                    );
                }
                let _ = client_write.shutdown().await;
            };
            tokio::join!(upstream, downstream);
        });
        IdleSpy {
            port,
            n_idles,
            relay,
        }
    }

    /// Waits until the server has accepted IDLE `n_idles` times in all.
    async fn until_idling(&mut self, n_idles: usize) {
        let seen = tokio::time::timeout(PROMPT, self.n_idles.wait_for(|n| *n >= n_idles)).await;
        assert!(
            matches!(seen, Ok(Ok(_))),
            "the watcher did not start IDLE number {n_idles} within {PROMPT:?}"
        );
    }

    fn n_idles(&self) -> usize {
        *self.n_idles.borrow()
    }

    /// Waits until both sides have closed the connection.
    async fn until_closed(&mut self) {
        let ended = tokio::time::timeout(PROMPT, &mut self.relay).await;
        assert!(
            ended.is_ok(),
            "the connection was still open after {PROMPT:?}"
        );
    }

    /// Closes both sides at once, as a dead network would look.
    fn cut(&self) {
        self.relay.abort();
    }

    fn config(&self, dovecot: &Dovecot) -> ConnectionConfig {
        ConnectionConfig {
            port: self.port,
            ..config(dovecot, Security::None)
        }
    }
}

impl Drop for IdleSpy {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

async fn start_watcher(dovecot: &Dovecot, spy: &IdleSpy) -> QueueWatcher {
    QueueWatcher::start(&spy.config(dovecot), QUEUE)
        .await
        .expect("watcher starts")
        .expect("Dovecot announces IDLE")
}

/// Appends to the queue on a connection of its own, as a mail server would.
async fn append_to_queue(dovecot: &Dovecot, n: u32) {
    let mut session = Session::connect(&config(dovecot, Security::Tls))
        .await
        .unwrap();
    let queue = session.resolve_folder(QUEUE).await.unwrap();
    session.append(&queue, &message(n), None).await.unwrap();
    session.logout().await;
}

#[tokio::test]
async fn an_idling_watcher_hears_of_an_append_at_once() {
    let dovecot = Dovecot::start();
    let mut spy = IdleSpy::start(dovecot.imap_port).await;
    let mut watcher = start_watcher(&dovecot, &spy).await;
    let started = Instant::now();
    let (event, ()) = tokio::join!(watcher.wait(LONG), async {
        spy.until_idling(1).await;
        append_to_queue(&dovecot, 1).await;
    });
    assert_eq!(event.unwrap(), WatchEvent::Changed);
    assert!(
        started.elapsed() < PROMPT,
        "the change took {:?} to be reported",
        started.elapsed()
    );
    watcher.logout().await;
}

#[tokio::test]
async fn a_quiet_wait_times_out_and_the_next_wait_still_hears() {
    let dovecot = Dovecot::start();
    let mut spy = IdleSpy::start(dovecot.imap_port).await;
    // The command timeout bounds IDLE's and DONE's answers, not the wait.
    let config = ConnectionConfig {
        timeout: Duration::from_secs(2),
        ..spy.config(&dovecot)
    };
    let mut watcher = QueueWatcher::start(&config, QUEUE)
        .await
        .unwrap()
        .expect("Dovecot announces IDLE");
    let max = Duration::from_secs(3);
    let started = Instant::now();
    assert_eq!(watcher.wait(max).await.unwrap(), WatchEvent::TimedOut);
    assert!(
        started.elapsed() >= max,
        "returned after {:?}",
        started.elapsed()
    );

    // DONE was answered, so the same connection can idle again.
    let (event, ()) = tokio::join!(watcher.wait(LONG), async {
        spy.until_idling(2).await;
        append_to_queue(&dovecot, 1).await;
    });
    assert_eq!(event.unwrap(), WatchEvent::Changed);
    assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
    watcher.logout().await;
}

#[tokio::test]
async fn without_idle_there_is_no_watcher() {
    let dovecot = Dovecot::start();
    let mut config = config(&dovecot, Security::Tls);
    config.ignore_capabilities = vec!["IDLE".into()];
    assert!(QueueWatcher::start(&config, QUEUE).await.unwrap().is_none());
}

/// A cut connection ends the wait with EOF; a stopped Dovecot with a BYE,
/// which Dovecot 2.3 sends an idling client about 10 s after its master
/// was told to stop (seen in its log: `Disconnected: Server shutting
/// down.`), so this test takes that long.
#[tokio::test]
async fn a_connection_lost_while_idling_is_a_connection_error() {
    for stop_the_server in [false, true] {
        let mut dovecot = Dovecot::start();
        let mut spy = IdleSpy::start(dovecot.imap_port).await;
        let mut watcher = start_watcher(&dovecot, &spy).await;
        let started = Instant::now();
        let waiting = tokio::spawn(async move { watcher.wait(LONG).await });
        spy.until_idling(1).await;
        if stop_the_server {
            // Stopping waits for the process to exit: off the runtime.
            dovecot = tokio::task::spawn_blocking(move || {
                dovecot.stop();
                dovecot
            })
            .await
            .unwrap();
        } else {
            spy.cut();
        }
        let result = tokio::time::timeout(PROMPT, waiting)
            .await
            .expect("the wait ends")
            .unwrap();
        let err = result.expect_err("a lost connection is an error, not TimedOut");
        assert!(
            err.is_connection(),
            "stop the server: {stop_the_server}: {err}"
        );
        assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
        // Only now: the server's files outlive its last process.
        drop(dovecot);
    }
}

#[tokio::test]
async fn a_wait_dropped_while_idling_is_resumed_by_the_next() {
    let dovecot = Dovecot::start();
    let mut spy = IdleSpy::start(dovecot.imap_port).await;
    let mut watcher = start_watcher(&dovecot, &spy).await;
    // As a caller's select! against a stop signal would.
    tokio::select! {
        event = watcher.wait(LONG) => panic!("the wait ended with nothing to report: {event:?}"),
        () = spy.until_idling(1) => {}
    }
    let (event, ()) = tokio::join!(watcher.wait(LONG), append_to_queue(&dovecot, 1));
    assert_eq!(event.unwrap(), WatchEvent::Changed);
    assert_eq!(
        spy.n_idles(),
        1,
        "the running IDLE was picked up, not sent again"
    );
    assert_eq!(
        watcher.wait(Duration::from_millis(200)).await.unwrap(),
        WatchEvent::TimedOut
    );

    // Dropping the watcher in the middle of a wait closes its connection.
    tokio::select! {
        event = watcher.wait(LONG) => panic!("the wait ended with nothing to report: {event:?}"),
        () = spy.until_idling(2) => {}
    }
    drop(watcher);
    spy.until_closed().await;
}

#[tokio::test]
async fn messages_leaving_the_queue_do_not_wake_the_watcher() {
    let dovecot = Dovecot::start();
    append_to_queue(&dovecot, 1).await;
    let mut spy = IdleSpy::start(dovecot.imap_port).await;
    let mut watcher = start_watcher(&dovecot, &spy).await;
    // A run moves the message out of the queue (EXPUNGE, no EXISTS): that
    // is the run's own doing and must not start another, empty run.
    let quiet = Duration::from_secs(3);
    let (event, ()) = tokio::join!(watcher.wait(quiet), async {
        spy.until_idling(1).await;
        let mut session = Session::connect(&config(&dovecot, Security::Tls))
            .await
            .unwrap();
        let queue = session.resolve_folder(QUEUE).await.unwrap();
        let storage = session
            .resolve_folder(mailscribe_testkit::STORAGE)
            .await
            .unwrap();
        let selected = session.select(&queue).await.unwrap();
        let uids: Vec<u32> = session
            .list_messages(selected)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        session.move_messages(&uids, &storage).await.unwrap();
        session.logout().await;
    });
    assert_eq!(event.unwrap(), WatchEvent::TimedOut);
    // New mail still wakes it.
    let (event, ()) = tokio::join!(watcher.wait(LONG), async {
        spy.until_idling(2).await;
        append_to_queue(&dovecot, 2).await;
    });
    assert_eq!(event.unwrap(), WatchEvent::Changed);
    watcher.logout().await;
}
