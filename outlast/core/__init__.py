"""Engine core: pure logic over the Store protocol and an injected Clock."""
