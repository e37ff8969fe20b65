import type { Config } from '#lib/config';
import { ConfigError } from '#lib/errors';
import type { PaymentProvider } from './payment-provider';
import { WechatPayV2 } from './wechat-pay-v2';
import { WechatPayV3 } from './wechat-pay-v3';

const providers = new WeakMap<Config, PaymentProvider>();

/**
 * The WeChat Pay client for the configured version (WECHAT_PAY_VERSION), built once per loaded config.
 * Every key was checked when the config loaded; this only refuses a function whose SECRET_NAMES did not
 * include the pay secrets (ConfigError).
 */
export function paymentProvider(config: Config): PaymentProvider {
  let provider = providers.get(config);
  if (!provider) {
    if (config.payVersion === 'v2') {
      if (!config.mchKey) throw new ConfigError('WECHAT_MCH_KEY was not loaded by this function');
      provider = new WechatPayV2(config);
    } else {
      const { mchPrivateKey, payVerifier } = config;
      if (!mchPrivateKey || !payVerifier || config.apiV3Key.symmetricKeySize === 0) {
        throw new ConfigError('the WeChat Pay v3 secrets were not loaded by this function');
      }
      provider = new WechatPayV3({ ...config, mchPrivateKey, payVerifier });
    }
    providers.set(config, provider);
  }
  return provider;
}

/**
 * The WeChat Pay clients of this configuration: the configured version's first, then, during a v2 ↔ v3
 * migration window (`config.previous`), the other version's.
 */
export function paymentProviders(config: Config): PaymentProvider[] {
  return config.previous
    ? [paymentProvider(config), paymentProvider(config.previous)]
    : [paymentProvider(config)];
}
