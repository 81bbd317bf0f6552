//! A loopback TCP proxy whose connections a test can cut, to see what a
//! lost connection does in the middle of a session.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct TcpProxy {
    pub port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
    refusing: Arc<AtomicBool>,
}

impl TcpProxy {
    /// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`.
    pub fn start(target: u16) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let (open_in_thread, refusing_in_thread) = (open.clone(), refusing.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if refusing_in_thread.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut registry = open_in_thread.lock().expect("proxy registry");
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        registry.push(clone);
                    }
                }
                drop(registry);
                for (mut from, mut to) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        TcpProxy {
            port,
            open,
            refusing,
        }
    }

    /// Cuts every open connection; new ones are refused until `restore`.
    pub fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        for stream in self.open.lock().expect("proxy registry").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}
