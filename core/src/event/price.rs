//! Turning the program's scaled integer prices into SOL per whole token.

/// Why a `latest_price` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("latest_price is 0")]
    Zero,
    #[error("latest_price {0} does not give a finite price")]
    NotFinite(u128),
}

/// `raw / 10^scale` as the `f64` nearest to the exact decimal value.
///
/// Dividing `raw as f64` by `1e28` would round twice (10^28 is not exact in binary); formatting the exact
/// decimal `raw e-scale` and parsing it rounds once, correctly.
pub fn scaled_price(raw: u128, scale: u32) -> Result<f64, PriceError> {
    if raw == 0 {
        return Err(PriceError::Zero);
    }
    let price: f64 = format!("{raw}e-{scale}")
        .parse()
        .expect("an integer with an exponent is a valid float literal");
    if price.is_finite() && price > 0.0 {
        Ok(price)
    } else {
        Err(PriceError::NotFinite(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_price() {
        assert_eq!(scaled_price(279_590_000_000_000_000_000, 28), Ok(2.7959e-8));
    }

    #[test]
    fn correctly_rounded_where_division_is_not() {
        // Any value: the result must equal the correctly rounded decimal.
        for raw in [1u128, 7, 123_456_789_012_345_678_901_234_567, u128::MAX] {
            let expected: f64 = format!("{raw}e-28").parse().unwrap();
            assert_eq!(scaled_price(raw, 28).unwrap().to_bits(), expected.to_bits());
        }
        assert_eq!(scaled_price(5, 0), Ok(5.0));
    }

    #[test]
    fn zero_is_rejected() {
        assert_eq!(scaled_price(0, 28), Err(PriceError::Zero));
    }
}
