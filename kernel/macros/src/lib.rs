//! `#[sirocco::main]`, the attribute that makes a function a Sirocco application's entry point. Use it through the
//! `sirocco` crate, which re-exports it; the expansion names `::sirocco`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, FnArg, ItemFn};

/// Makes the function the application's entry point. Three forms:
///
/// ```ignore
/// #[sirocco::main]
/// async fn main(env: sirocco::Env) -> Result<(), sirocco::Error> { .. }   // run by sirocco::block_on
///
/// #[sirocco::main]
/// async fn main() { .. }                                                   // the same, without the Env
///
/// #[sirocco::main]
/// fn main(env: &sirocco::Env) -> Result<(), MyError> { .. }               // a synchronous main
/// ```
///
/// The return type is anything that implements `sirocco::Termination`: `()`, `sirocco::Exit`, or a `Result` of
/// either with an error that implements `Display`. Returning powers the domain off (or ends it as the `Exit` says);
/// an `Err` is logged and crashes the domain.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new(args.span(), "#[sirocco::main] takes no arguments").to_compile_error().into();
    }
    let f = parse_macro_input!(item as ItemFn);
    match expand(&f) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(f: &ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &f.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(sig.generics.span(), "the application's main cannot be generic"));
    }
    if let Some(receiver) = sig.inputs.iter().find(|a| matches!(a, FnArg::Receiver(_))) {
        return Err(syn::Error::new(receiver.span(), "the application's main is a free function"));
    }
    if sig.inputs.len() > 1 {
        return Err(syn::Error::new(sig.inputs.span(), "the application's main takes at most one argument, the Env"));
    }
    let name = &sig.ident;
    let takes_env = !sig.inputs.is_empty();
    let call = match (sig.asyncness.is_some(), takes_env) {
        // An async main gets its own copy of the Env (a future must not borrow the caller's frame).
        (true, true) => quote! { ::sirocco::block_on(#name(::core::clone::Clone::clone(env))) },
        (true, false) => quote! { ::sirocco::block_on(#name()) },
        // Called through an opaque pointer, so a synchronous main keeps a frame of its own (and its name in a
        // backtrace) instead of being inlined here.
        (false, true) => quote! { (::core::hint::black_box(#name as fn(&::sirocco::Env) -> _))(env) },
        (false, false) => quote! { (::core::hint::black_box(#name as fn() -> _))() },
    };
    Ok(quote! {
        #f

        #[doc(hidden)]
        #[no_mangle]
        pub fn __sirocco_app_main(env: &::sirocco::Env) -> ::sirocco::Exit {
            let _ = env;
            // The app's package name, for syslog's APP-NAME and the metrics' build information.
            ::sirocco::__set_app_name(::core::env!("CARGO_PKG_NAME"));
            ::sirocco::Termination::report(#call)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(src: &str) -> syn::Result<String> {
        expand(&syn::parse_str::<ItemFn>(src).expect("test input parses")).map(|t| t.to_string())
    }

    #[test]
    fn an_async_main_runs_on_block_on_with_its_own_env() {
        let out = expanded("async fn main(env: sirocco::Env) -> Result<(), sirocco::Error> { Ok(()) }").unwrap();
        assert!(out.contains("fn __sirocco_app_main"), "{out}");
        assert!(out.contains(":: sirocco :: block_on (main (:: core :: clone :: Clone :: clone (env)))"), "{out}");
        assert!(out.contains("async fn main"), "the function itself is kept: {out}");
        assert!(
            out.contains(":: sirocco :: __set_app_name (:: core :: env ! (\"CARGO_PKG_NAME\"))"),
            "the app's name is recorded (syslog's APP-NAME, sirocco_build_info): {out}"
        );
        let out = expanded("async fn start() {}").unwrap();
        assert!(out.contains(":: sirocco :: block_on (start ())"), "{out}");
    }

    #[test]
    fn a_sync_main_is_called_through_an_opaque_pointer() {
        let out = expanded("fn main(env: &sirocco::Env) {}").unwrap();
        assert!(out.contains("black_box (main as fn (& :: sirocco :: Env) -> _)"), "{out}");
        assert!(!out.contains("block_on"), "{out}");
    }

    #[test]
    fn a_main_that_cannot_be_an_entry_point_is_a_compile_error_saying_why() {
        let e = expanded("async fn main<T>(env: T) {}").unwrap_err();
        assert!(e.to_string().contains("cannot be generic"), "{e}");
        let e = expanded("async fn main(a: u8, b: u8) {}").unwrap_err();
        assert!(e.to_string().contains("at most one argument"), "{e}");
    }
}
