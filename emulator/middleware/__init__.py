"""The ARM request pipeline, one stage a module; `emulator.server` assembles them in one visible order."""
