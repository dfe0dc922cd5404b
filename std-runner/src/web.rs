//! `staticgrad web`: serves the chapter-6 page (`web/www/`: index.html, app.js, worker.js and
//! the WebAssembly module `web/build.sh` builds) on 127.0.0.1 with `std::net`, one thread per
//! connection, GET and HEAD only, files under the folder only.
//!
//! The bundled MNIST files are served from the binary (`/data/…`) when the folder has no copy,
//! so the page trains on the same bytes as `staticgrad train`.

use crate::Error;
use crate::data::{BUNDLED_IMAGES, BUNDLED_LABELS};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

/// Settings of `staticgrad web`.
#[derive(clap::Args, Debug, Clone)]
pub struct WebArgs {
    /// Port on 127.0.0.1 (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8620)]
    pub port: u16,
    /// The page's folder [default: web/www, else the one beside the runner's sources].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The module the page loads; `web/build.sh` builds it.
pub const WASM: &str = "staticgrad.wasm";

/// The page's folder: `--dir`, or `web/www` under the current folder, or the one in the source
/// tree this runner was built from.
pub fn page_dir(args: &WebArgs) -> PathBuf {
    if let Some(d) = &args.dir {
        return d.clone();
    }
    let here = PathBuf::from("web/www");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/www");
    if !here.is_dir() && source.is_dir() { source } else { here }
}

/// Checks the folder holds a built page: refused (exit 2) naming the command that builds it.
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    if !dir.join("index.html").is_file() {
        return Err(Error::input(format!(
            "{}: no index.html here; give the page's folder with --dir (web/www in the source tree)",
            dir.display()
        )));
    }
    if !dir.join(WASM).is_file() {
        return Err(Error::input(format!(
            "{}: the WebAssembly module is not built; build it with `bash web/build.sh` (from the source tree)",
            dir.join(WASM).display()
        )));
    }
    Ok(())
}

/// Serves until the process is stopped; prints the URL first.
pub fn run(args: &WebArgs) -> Result<(), Error> {
    let dir = page_dir(args);
    check_dir(&dir)?;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .map_err(|e| Error::input(format!("--port {}: cannot listen on 127.0.0.1: {e}", args.port)))?;
    let addr = listener.local_addr().map_err(|e| Error::failed(format!("listening socket: {e}")))?;
    println!("serving {} at http://{addr}/ (Ctrl-C stops)", dir.display());
    let _ = std::io::stdout().flush();
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let dir = dir.clone();
        std::thread::spawn(move || {
            // A client that goes away mid-request is its own business.
            let _ = serve(stream, &dir);
        });
    }
    Ok(())
}

/// The file a request path names under `dir`, or `None` for anything that would leave it.
pub fn resolve(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let p =
        if path.ends_with('/') || path.is_empty() { dir.join(rel).join("index.html") } else { dir.join(rel) };
    Some(p)
}

/// Content type by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

fn serve(stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The headers are read and dropped (every response closes the connection).
    let mut h = String::new();
    while reader.read_line(&mut h)? > 2 {
        h.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut out = stream;
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, "405 Method Not Allowed", "text/plain", b"GET or HEAD only\n", false);
    }
    let head = method == "HEAD";
    let Some(path) = resolve(dir, target) else {
        return respond(&mut out, "403 Forbidden", "text/plain", b"outside the page's folder\n", head);
    };
    let ctype = content_type(&path.to_string_lossy());
    match std::fs::read(&path) {
        Ok(body) => respond(&mut out, "200 OK", ctype, &body, head),
        Err(_) => match target.split('?').next().unwrap_or("") {
            "/data/train-images-idx3-ubyte.gz" => respond(&mut out, "200 OK", ctype, BUNDLED_IMAGES, head),
            "/data/train-labels-idx1-ubyte.gz" => respond(&mut out, "200 OK", ctype, BUNDLED_LABELS, head),
            _ => respond(&mut out, "404 Not Found", "text/plain", b"not found\n", head),
        },
    }
}

fn respond(out: &mut TcpStream, status: &str, ctype: &str, body: &[u8], head: bool) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_folder() {
        let d = Path::new("/srv/www");
        assert_eq!(resolve(d, "/"), Some(d.join("index.html")));
        assert_eq!(resolve(d, "/app.js?x=1"), Some(d.join("app.js")));
        assert_eq!(resolve(d, "/data/a.gz"), Some(d.join("data/a.gz")));
        assert_eq!(resolve(d, "/../etc/passwd"), None);
        assert_eq!(resolve(d, "/data/../../x"), None);
        assert_eq!(content_type("x/staticgrad.wasm"), "application/wasm");
    }

    #[test]
    fn an_unbuilt_page_is_refused_naming_the_build_command() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.html"), "<!doctype html>").unwrap();
        let e = check_dir(d.path()).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.message().contains("bash web/build.sh"), "{}", e.message());
        std::fs::write(d.path().join(WASM), b"\0asm").unwrap();
        assert!(check_dir(d.path()).is_ok());
    }
}
