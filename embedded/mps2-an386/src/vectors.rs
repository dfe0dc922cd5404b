// The device part of the vector table (cortex-m-rt's `device` feature): the firmware enables no
// interrupt, so one entry (IRQ 0, the default handler) instead of the generic 240 (960 B of
// flash). cortex-m-rt's linker script needs at least one.
unsafe extern "C" {
    fn DefaultHandler();
}
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];
