// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Started by a load as the runtime host: that is all this process does.
    mm_core::runtime::host::run_if_asked();
    model_manager_lib::run();
}
