//! What an InnoPaaS account offers beyond sending: WhatsApp template creation (InnoPaaS has no
//! template read, list or delete API) and its WABA's phone numbers.

use async_trait::async_trait;
use chrono::Utc;
use gateway_core::template::to_seconds;
use gateway_core::{
    AccountDescription, AccountInfo, Channel, ProviderError, ProviderTemplate, TemplateDraft, TemplateError, Templates,
};

use crate::account::InnopaasAccount;
use crate::template::TemplateSubmit;

const NO_READS: &str = "InnoPaaS offers no template reads";

#[async_trait]
impl Templates for InnopaasAccount {
    fn keeps(&self, channel: Channel) -> bool {
        channel == Channel::Whatsapp
    }

    fn readable(&self) -> bool {
        false
    }

    /// `template/submit` answers only an id: the template is its draft, pending review.
    async fn create(&self, draft: TemplateDraft<'_>) -> Result<ProviderTemplate, TemplateError> {
        let TemplateDraft::Whatsapp(draft) = draft else {
            return Err(TemplateError::NotOffered(format!("InnoPaaS has no {} templates", draft.channel())));
        };
        let submit = TemplateSubmit::from_draft(draft).map_err(TemplateError::Draft)?;
        let id = self.submit_template(&submit).await?;
        Ok(ProviderTemplate::submitted(id, draft, to_seconds(Utc::now())))
    }

    async fn get(&self, _: Channel, _: &str) -> Result<Option<ProviderTemplate>, TemplateError> {
        Err(TemplateError::NotOffered(NO_READS.into()))
    }

    async fn list(&self, _: Channel, _: Option<&str>, _: u32) -> Result<Vec<ProviderTemplate>, TemplateError> {
        Err(TemplateError::NotOffered(NO_READS.into()))
    }

    async fn delete(&self, _: Channel, _: &str) -> Result<bool, TemplateError> {
        Err(TemplateError::NotOffered("InnoPaaS offers no template deletion; delete it in its console".into()))
    }
}

/// The WABA's phone numbers; the tier and the rating shown are those of the account's send
/// number (else of the first number).
#[async_trait]
impl AccountInfo for InnopaasAccount {
    async fn describe(&self) -> Result<AccountDescription, ProviderError> {
        let phones = self.phone_info().await?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let ours = phones
            .iter()
            .find(|p| p.display_phone_number.as_deref().is_some_and(|d| digits(d) == self.config().send_number))
            .or_else(|| phones.first());
        Ok(AccountDescription {
            messaging_limit_tier: ours.and_then(|p| p.messaging_limit_tier.clone()),
            quality_rating: ours.and_then(|p| p.quality_rating.clone()),
            details: None,
            phone_numbers: Some(phones),
        })
    }
}
