//! `gateway-innopaas`: the InnoPaaS (Chuanglan) WhatsApp v3 adapter.
